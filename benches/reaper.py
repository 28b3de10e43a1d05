#!/usr/bin/env python3
"""Run a command as a child subreaper that reaps at once, as a desktop session's init
does (systemd, or systemd --user as the session's subreaper).

A box's holder and the host end of its `box host-exec` outlive the command that started
them, so when they end they are reparented to the nearest subreaper, or to PID 1. Some
machines' PID 1 (a VM's minimal init) reaps only every few seconds: the zombies pile up
between benchmark runs and every /proc scan (`box stop`, `box list`) pays for them.

    benches/reaper.py COMMAND [ARGS...]     (exits with the command's status)
"""
import ctypes
import os
import sys

PR_SET_CHILD_SUBREAPER = 36
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit(f"reaper: prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")
child = os.fork()
if child == 0:
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    except OSError as err:
        print(f"reaper: {sys.argv[1]}: {err}", file=sys.stderr)
        os._exit(127)
status = 1
while True:
    try:
        pid, wait_status = os.wait()
    except ChildProcessError:
        break
    except KeyboardInterrupt:
        continue
    if pid == child:
        status = os.waitstatus_to_exitcode(wait_status)
        if status < 0:
            status = 128 - status
        # The holders of boxes still running stay behind as our children: leave them to
        # PID 1 rather than wait for them.
        break
sys.exit(status)
