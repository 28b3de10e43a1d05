//! The apply step against a recording fake of [`MountSys`]: the order of the calls, the
//! fallbacks, and the errors (each naming its path, with its hint), without root.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CStr, OsStr};
use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::{OFlags, StatVfsMountFlags};
use rustix::mount::{MountFlags, MountPropagationFlags};

use super::*;
use crate::runtime::plan::UserSpec;

/// The box root in the test plans (a store in the home, as usual).
const ROOT: &str = "/home/alice/.local/share/box/containers/dev/root";

/// What a fake descriptor names: a path in the box (`/data`, `/` for the box root), a
/// detached tree (`tree:SOURCE`) or tmpfs (`tmpfs`), attached or not.
#[derive(Debug, Clone, PartialEq)]
struct FakeFd(String);

/// A kernel that records what it is asked to do. Queries (lookups, stat, readlink) are
/// not recorded, but every call, query or not, can be made to fail.
#[derive(Default)]
struct Fake {
    calls: Vec<String>,
    /// Each lookup below a base: `in-root PATH` or `beneath PATH` (box paths).
    lookups: Vec<String>,
    /// Paths that exist in the box, relative to its root ("" is the root); their
    /// parents exist too.
    in_box: BTreeSet<PathBuf>,
    /// Host paths that exist.
    on_host: BTreeSet<PathBuf>,
    /// `statvfs` flags by path (none when absent).
    flags: BTreeMap<PathBuf, StatVfsMountFlags>,
    mountinfo: String,
    /// Where each attached tree is in the box.
    attached: BTreeMap<String, PathBuf>,
    /// What `symlink_leading_out` finds, by the box path looked up.
    links: BTreeMap<PathBuf, (PathBuf, PathBuf)>,
    /// A call whose text starts with the first string (or is it, when it ends in `$`)
    /// fails with the errno.
    fail: Vec<(String, i32)>,
}

impl Fake {
    fn new() -> Fake {
        let mut fake = Fake::default();
        for dir in ["", "dev", "run", "home", "home/alice", "etc"] {
            fake.in_box.insert(dir.into());
        }
        for path in [
            "/dev",
            "/home/alice",
            "/srv/data",
            "/home/alice/.local/share/box/layers/bottom",
            "/home/alice/.local/share/box/layers/top",
        ] {
            fake.on_host.insert(path.into());
        }
        fake
    }

    fn failing(mut self, call: &str, errno: i32) -> Fake {
        self.fail.push((call.to_owned(), errno));
        self
    }

    /// Check `call` against the failures asked for, recording it when `record`.
    fn call(&mut self, call: String, record: bool) -> io::Result<()> {
        let failure = self
            .fail
            .iter()
            .find(|(rule, _)| match rule.strip_suffix('$') {
                Some(exact) => call == exact,
                None => call.starts_with(rule.as_str()),
            })
            .map(|&(_, errno)| errno);
        if record {
            self.calls.push(call);
        }
        match failure {
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            None => Ok(()),
        }
    }

    fn record(&mut self, call: String) -> io::Result<()> {
        self.call(call, true)
    }

    fn query(&mut self, call: String) -> io::Result<()> {
        self.call(call, false)
    }

    /// The box path a descriptor names.
    fn path_of(&self, fd: &FakeFd) -> PathBuf {
        match self.attached.get(&fd.0) {
            Some(at) => at.clone(),
            None => PathBuf::from(&fd.0),
        }
    }

    /// The box path a descriptor of a directory in the box plus `name` gives.
    fn child(&self, dir: &FakeFd, name: &OsStr) -> PathBuf {
        self.path_of(dir).join(name)
    }

    fn in_the_box(&self, path: &Path) -> bool {
        let relative = path.strip_prefix("/").unwrap_or(path);
        self.in_box.iter().any(|p| p.starts_with(relative))
    }
}

/// `BIND|REC` for a flags value's `iter_names()`.
fn names<T>(flags: impl Iterator<Item = (&'static str, T)>) -> String {
    let names: Vec<&str> = flags.map(|(name, _)| name).collect();
    if names.is_empty() {
        "-".into()
    } else {
        names.join("|")
    }
}

impl MountSys for Fake {
    type Fd = FakeFd;

    fn fd_path(&self, fd: &FakeFd) -> PathBuf {
        format!("fd:{}", self.path_of(fd).display()).into()
    }

    fn unshare_mount_and_uts(&mut self) -> io::Result<()> {
        self.record("unshare mnt uts".into())
    }

    fn set_hostname(&mut self, name: &str) -> io::Result<()> {
        self.record(format!("sethostname {name}"))
    }

    fn chdir(&mut self, path: &Path) -> io::Result<()> {
        self.record(format!("chdir {}", path.display()))
    }

    fn fchdir(&mut self, dir: &FakeFd) -> io::Result<()> {
        self.record(format!("fchdir {}", dir.0))
    }

    fn pivot_root_to_cwd(&mut self) -> io::Result<()> {
        self.record("pivot_root . .".into())
    }

    fn mount(
        &mut self,
        source: &Path,
        target: &Path,
        fstype: &str,
        flags: MountFlags,
        data: Option<&CStr>,
    ) -> io::Result<()> {
        let data = data.map(|d| format!(" {}", d.to_string_lossy()));
        self.record(format!(
            "mount {} {} {fstype:?} {}{}",
            source.display(),
            target.display(),
            names(flags.iter_names()),
            data.unwrap_or_default()
        ))
    }

    fn mount_bind(&mut self, source: &Path, target: &Path) -> io::Result<()> {
        self.record(format!("bind {} {}", source.display(), target.display()))
    }

    fn mount_change(&mut self, target: &Path, flags: MountPropagationFlags) -> io::Result<()> {
        self.record(format!(
            "propagation {} {}",
            target.display(),
            names(flags.iter_names())
        ))
    }

    fn mount_remount(&mut self, target: &Path, flags: MountFlags) -> io::Result<()> {
        self.record(format!(
            "remount {} {}",
            target.display(),
            names(flags.iter_names())
        ))
    }

    fn unmount_detach(&mut self, target: &Path) -> io::Result<()> {
        self.record(format!("umount-detach {}", target.display()))
    }

    fn clone_tree(&mut self, path: &Path, recursive: bool) -> io::Result<FakeFd> {
        let rec = if recursive { " recursive" } else { "" };
        self.record(format!("clone-tree {}{rec}", path.display()))?;
        Ok(FakeFd(format!("tree:{}", path.display())))
    }

    fn new_tmpfs(&mut self, params: &[(String, String)], attrs: MountAttrs) -> io::Result<FakeFd> {
        let params: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.record(format!("tmpfs {} {}", params.join(","), describe(&attrs)))?;
        Ok(FakeFd("tmpfs".into()))
    }

    fn move_mount(&mut self, from: &FakeFd, to: &FakeFd) -> io::Result<()> {
        let at = self.path_of(to);
        self.record(format!("move-mount {} {}", from.0, at.display()))?;
        self.attached.insert(from.0.clone(), at);
        Ok(())
    }

    fn set_attrs(&mut self, mount: &FakeFd, attrs: MountAttrs, recursive: bool) -> io::Result<()> {
        let at = self.path_of(mount);
        self.record(format!(
            "mount_setattr {} {}{}{}",
            at.display(),
            describe(&attrs),
            if attrs.private { " private" } else { "" },
            if recursive { " recursive" } else { "" },
        ))
    }

    fn mount_flags_of(&mut self, path: &Path) -> io::Result<StatVfsMountFlags> {
        self.query(format!("statvfs {}", path.display()))?;
        Ok(self
            .flags
            .get(path)
            .copied()
            .unwrap_or(StatVfsMountFlags::empty()))
    }

    fn read_link(&mut self, path: &Path) -> io::Result<PathBuf> {
        self.query(format!("readlink {}", path.display()))?;
        let in_box = path.to_str().and_then(|p| p.strip_prefix("fd:/"));
        Ok(Path::new(ROOT).join(in_box.expect("a descriptor path")))
    }

    fn mountinfo(&mut self) -> io::Result<String> {
        self.query("mountinfo".into())?;
        Ok(self.mountinfo.clone())
    }

    fn open_dir_path(&mut self, path: &Path) -> io::Result<FakeFd> {
        self.record(format!("open {}", path.display()))?;
        assert_eq!(path, Path::new(ROOT), "only the box root is opened by path");
        Ok(FakeFd("/".into()))
    }

    fn open_below(
        &mut self,
        base: &FakeFd,
        path: &Path,
        _: OFlags,
        shared: bool,
    ) -> io::Result<FakeFd> {
        let path = self.path_of(base).join(path);
        let how = if shared { "beneath" } else { "in-root" };
        self.lookups.push(format!("{how} {}", path.display()));
        self.query(format!("openat2 {}", path.display()))?;
        if !self.in_the_box(&path) {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        Ok(FakeFd(path.display().to_string()))
    }

    fn open_mounted(&mut self, dir: &FakeFd, name: &OsStr) -> io::Result<FakeFd> {
        let path = self.child(dir, name);
        self.query(format!("open-mounted {}", path.display()))?;
        if !self.in_the_box(&path) {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        Ok(FakeFd(path.display().to_string()))
    }

    fn symlink_leading_out(
        &mut self,
        base: &FakeFd,
        path: &Path,
        _: bool,
    ) -> Option<(PathBuf, PathBuf)> {
        let path = self.path_of(base).join(path);
        self.links.get(&path).cloned()
    }

    fn mkdirat(&mut self, dir: &FakeFd, name: &OsStr, mode: u32) -> io::Result<()> {
        let path = self.child(dir, name);
        self.record(format!("mkdir {} {mode:o}", path.display()))?;
        self.in_box
            .insert(path.strip_prefix("/").unwrap().to_owned());
        Ok(())
    }

    fn create_file_at(&mut self, dir: &FakeFd, name: &OsStr, mode: u32) -> io::Result<()> {
        let path = self.child(dir, name);
        self.record(format!("create {} {mode:o}", path.display()))?;
        self.in_box
            .insert(path.strip_prefix("/").unwrap().to_owned());
        Ok(())
    }

    fn exists(&mut self, path: &Path) -> io::Result<bool> {
        self.query(format!("exists {}", path.display()))?;
        Ok(self.on_host.contains(path))
    }

    fn owner(&mut self, path: &Path) -> io::Result<u32> {
        self.query(format!("owner {}", path.display()))?;
        Ok(if path.ends_with("work") { 0 } else { 1000 })
    }

    fn chown_to_root(&mut self, path: &Path) -> io::Result<()> {
        self.record(format!("chown 0:0 {}", path.display()))
    }

    fn build_copy(
        &mut self,
        layers: &[PathBuf],
        dest: &Path,
        marker: &Path,
    ) -> anyhow::Result<bool> {
        let layers: Vec<String> = layers.iter().map(|l| l.display().to_string()).collect();
        self.record(format!(
            "copy {} into {} marked by {}",
            layers.join(","),
            dest.display(),
            marker.display()
        ))?;
        Ok(true)
    }
}

fn bind(source: &str, target: &str) -> Mount {
    Mount {
        source: source.into(),
        target: target.into(),
        kind: MountKind::BindDir { recursive: true },
        read_only: false,
        hint: None,
        restrict: Default::default(),
    }
}

/// A plan with a mount of each kind and a read-only volume.
fn plan() -> Plan {
    let store = Path::new("/home/alice/.local/share/box");
    let dir = store.join("containers/dev");
    Plan {
        name: "dev".into(),
        instance: "0123".into(),
        image: "example.com/debian:12".into(),
        hostname: "devbox".into(),
        uid_map: vec![],
        gid_map: vec![],
        has_root: true,
        root: ROOT.into(),
        storage: Storage::Overlay {
            lowers_dir: dir.join("lowers"),
            lowers: vec!["1".into(), "0".into()],
            upper: dir.join("upper"),
            work: dir.join("work"),
        },
        layer_dirs: vec![store.join("layers/bottom"), store.join("layers/top")],
        copy_marker: dir.join("copy-complete"),
        mounts: vec![
            bind("/dev", "/dev"),
            Mount {
                source: "tmpfs".into(),
                target: "/run".into(),
                kind: MountKind::Tmpfs {
                    options: "mode=0755,nosuid,nodev".into(),
                },
                read_only: false,
                hint: None,
                restrict: Default::default(),
            },
            Mount {
                source: "/".into(),
                target: "/run/host".into(),
                kind: MountKind::HostRoot,
                read_only: false,
                hint: None,
                restrict: Default::default(),
            },
            bind("/home/alice", "/home/alice"),
            Mount {
                read_only: true,
                hint: Some("create /srv/data on the host".into()),
                restrict: Default::default(),
                ..bind("/srv/data", "/data")
            },
        ],
        files: vec![],
        user: UserSpec {
            name: "alice".into(),
            uid: 1000,
            gid: 1000,
            group: "alice".into(),
            home: "/home/alice".into(),
            host_shell: "/bin/bash".into(),
        },
        timezone: None,
        env_forced: vec![],
        env_defaults: vec![],
        joins: vec![],
        device_hooks: vec![],
        device_mount_points: vec![],
        made_device_mount_points: vec![],
        host_exec_dir: None,
    }
}

/// Apply `plan` with `fake`; the outcome, the calls and the notices.
fn run(fake: Fake, plan: &Plan) -> (Result<StorageKind>, Vec<String>, Vec<String>) {
    let (outcome, fake, notices) = run_keeping(fake, plan);
    (outcome.map(|applied| applied.storage), fake.calls, notices)
}

/// [`run`], with all it gives back and the fake as it was left.
fn run_keeping(mut fake: Fake, plan: &Plan) -> (Result<Applied<FakeFd>>, Fake, Vec<String>) {
    let mut notices = Vec::new();
    let outcome = apply(&mut fake, plan, true, None, &mut |text| notices.push(text));
    (outcome, fake, notices)
}

/// The message and hint of an error, as the user reads them.
fn shown(err: &anyhow::Error) -> (String, Option<String>) {
    (
        crate::error::message(err),
        err.downcast_ref::<Hint>().map(|h| h.0.clone()),
    )
}

#[test]
fn a_box_is_set_up_in_order_and_pivots_last() {
    let (outcome, calls, notices) = run(Fake::new(), &plan());
    assert_eq!(outcome.unwrap(), StorageKind::Overlay);
    assert!(notices.is_empty(), "{notices:?}");
    let root = ROOT;
    let dir = "/home/alice/.local/share/box/containers/dev";
    assert_eq!(
        calls,
        [
            "unshare mnt uts".to_owned(),
            "propagation / DOWNSTREAM|REC".into(),
            "sethostname devbox".into(),
            "clone-tree / recursive".into(),
            // The upper dir becomes root's; the work dir already is.
            format!("chown 0:0 {dir}/upper"),
            format!("chdir {dir}/lowers"),
            format!(
                "mount overlay {root} \"overlay\" - lowerdir=1:0,upperdir={dir}/upper,workdir={dir}/work,userxattr"
            ),
            format!("open {root}"),
            "clone-tree /dev recursive".into(),
            "move-mount tree:/dev /dev".into(),
            "tmpfs mode=0755 nosuid and nodev".into(),
            "move-mount tmpfs /run".into(),
            // Made in the tmpfs, the box's own.
            "mkdir /run/host 755".into(),
            "move-mount tree:/ /run/host".into(),
            "clone-tree /home/alice recursive".into(),
            "move-mount tree:/home/alice /home/alice".into(),
            "mkdir /data 755".into(),
            "clone-tree /srv/data recursive".into(),
            "move-mount tree:/srv/data /data".into(),
            "mount_setattr /data read-only private recursive".into(),
            "fchdir /".into(),
            "pivot_root . .".into(),
            "umount-detach .".into(),
            "chdir /".into(),
        ]
    );
}

#[test]
fn the_copy_of_the_box_root_in_a_recursive_bind_is_detached() {
    let copy = "home/alice/.local/share/box/containers/dev/root";
    let mut fake = Fake::new();
    fake.in_box.insert(copy.into());
    let (outcome, calls, _) = run(fake, &plan());
    outcome.unwrap();
    let bind = calls
        .iter()
        .position(|c| c == "move-mount tree:/home/alice /home/alice")
        .unwrap();
    assert_eq!(calls[bind + 1], format!("umount-detach fd:/{copy}"));

    // Nothing mounted there (EINVAL) is fine; another error names the copy.
    let mut fake = Fake::new().failing("umount-detach fd:/home", libc::EINVAL);
    fake.in_box.insert(copy.into());
    run(fake, &plan()).0.unwrap();
    let mut fake = Fake::new().failing("umount-detach fd:/home", libc::EPERM);
    fake.in_box.insert(copy.into());
    let err = run(fake, &plan()).0.unwrap_err();
    assert_eq!(
        shown(&err).0,
        format!(
            "detaching the copy of the box root at /{copy} in the box: Operation not permitted (os error 1)"
        )
    );
}

#[test]
fn without_mount_setattr_each_mount_of_a_volume_is_remounted_read_only() {
    let data = format!("{ROOT}/data");
    let mut fake = Fake::new().failing("mount_setattr", libc::ENOSYS);
    fake.mountinfo = format!(
        "22 1 0:21 / / rw - ext4 /dev/sda1 rw\n\
         40 22 0:40 / {data} rw - ext4 /dev/sda1 rw\n\
         41 40 0:41 / {data}/usb rw,nosuid - vfat /dev/sdb1 rw\n\
         42 41 0:42 / {data}/usb/tmp rw - tmpfs tmpfs rw\n\
         43 22 0:43 / {data}base rw - tmpfs tmpfs rw\n"
    );
    // Flags the host locked on the mounts are kept, or the kernel refuses the remount.
    fake.flags.insert(
        "fd:/data".into(),
        StatVfsMountFlags::NOSUID | StatVfsMountFlags::NODEV,
    );
    fake.flags.insert(
        format!("{data}/usb").into(),
        StatVfsMountFlags::NOEXEC | StatVfsMountFlags::RELATIME,
    );
    let (outcome, calls, _) = run(fake, &plan());
    outcome.unwrap();
    let start = calls
        .iter()
        .position(|c| c.starts_with("mount_setattr"))
        .unwrap();
    assert_eq!(
        calls[start..start + 6],
        [
            "mount_setattr /data read-only private recursive".to_owned(),
            "propagation fd:/data PRIVATE|REC".into(),
            "remount fd:/data BIND|NODEV|NOSUID|RDONLY".into(),
            format!("remount {data}/usb BIND|NOEXEC|RDONLY|RELATIME"),
            format!("remount {data}/usb/tmp BIND|RDONLY"),
            "fchdir /".into(),
        ]
    );
}

#[test]
fn a_volume_that_cannot_be_made_read_only_stops_the_start_and_says_where() {
    let data = format!("{ROOT}/data");
    let fallback = |fake: Fake| {
        let mut fake = fake.failing("mount_setattr", libc::ENOSYS);
        fake.mountinfo =
            format!("40 22 0:40 / {data} rw - x x rw\n41 40 0:41 / {data}/usb rw - x x rw\n");
        fake
    };
    // The remount of a mount below the volume fails: never left writable, never pivoted.
    let fake = fallback(Fake::new()).failing(&format!("remount {data}/usb"), libc::EPERM);
    let mut volume = plan();
    let (outcome, calls, _) = run(fake, &volume);
    let err = outcome.unwrap_err();
    assert_eq!(
        shown(&err),
        (
            format!(
                "making /data read-only in the box: remounting {data}/usb read-only: Operation not permitted (os error 1)"
            ),
            // The volume's own hint says more.
            Some("create /srv/data on the host".into())
        )
    );
    assert!(
        !calls.iter().any(|c| c.starts_with("pivot_root")),
        "{calls:?}"
    );
    // Without a hint of its own, the mount gets the remount's.
    volume.mounts[4].hint = None;
    let fake = fallback(Fake::new()).failing(&format!("remount {data}/usb"), libc::EPERM);
    let err = run(fake, &volume).0.unwrap_err();
    assert_eq!(
        shown(&err).1.as_deref(),
        Some(
            "a read-only volume is never left writable; remove the mounts below its source, or create the box without `:ro`"
        )
    );

    // The other steps of the fallback name what they read.
    let fake = fallback(Fake::new()).failing("readlink", libc::ENOENT);
    let err = run(fake, &volume).0.unwrap_err();
    assert_eq!(
        shown(&err).0,
        "making /data read-only in the box: reading fd:/data (the mount at /data): No such file or directory (os error 2)"
    );
    let fake = fallback(Fake::new()).failing("mountinfo", libc::EACCES);
    let err = run(fake, &volume).0.unwrap_err();
    assert_eq!(
        shown(&err).0,
        "making /data read-only in the box: reading /proc/self/mountinfo: Permission denied (os error 13)"
    );
    // mount_setattr failing otherwise than ENOSYS is an error, with no fallback.
    let fake = Fake::new().failing("mount_setattr", libc::EPERM);
    let (outcome, calls, _) = run(fake, &volume);
    assert_eq!(
        shown(&outcome.unwrap_err()).0,
        "making /data read-only in the box: Operation not permitted (os error 1)"
    );
    assert!(
        !calls.iter().any(|c| c.starts_with("propagation fd:")),
        "{calls:?}"
    );
}

#[test]
fn a_kernel_refusing_overlayfs_gets_a_copy_and_the_user_a_notice() {
    let fake = Fake::new().failing("mount overlay", libc::EPERM);
    let (outcome, calls, notices) = run(fake, &plan());
    assert_eq!(outcome.unwrap(), StorageKind::Copy);
    assert_eq!(
        notices,
        [
            "the kernel refused overlayfs for box dev (Operation not permitted (os error 1)); using a full copy of the image instead: it takes the image's size on disk again and a while to build once (`box doctor` checks overlayfs on this host)"
        ]
    );
    let layers = "/home/alice/.local/share/box/layers";
    let start = calls.iter().position(|c| c.starts_with("copy ")).unwrap();
    assert_eq!(
        calls[start..start + 3],
        [
            format!(
                "copy {layers}/bottom,{layers}/top into {ROOT} marked by /home/alice/.local/share/box/containers/dev/copy-complete"
            ),
            format!("chown 0:0 {ROOT}"),
            format!("bind {ROOT} {ROOT}"),
        ]
    );

    // Copy storage from the start: no overlay attempted, no notice.
    let mut copy = plan();
    copy.storage = Storage::Copy;
    let (outcome, calls, notices) = run(Fake::new(), &copy);
    assert_eq!(outcome.unwrap(), StorageKind::Copy);
    assert!(notices.is_empty());
    assert!(!calls.iter().any(|c| c.starts_with("mount overlay")));

    // Any other overlay error is the user's to fix: a layer gone from the store is named
    // as such, and only then.
    let mut fake = Fake::new().failing("mount overlay", libc::ENOENT);
    fake.on_host
        .remove(Path::new("/home/alice/.local/share/box/layers/top"));
    let (message, hint) = shown(&run(fake, &plan()).0.unwrap_err());
    assert_eq!(
        message,
        format!(
            "mounting overlayfs at {ROOT}: 1 of its 2 layer directories are missing, /home/alice/.local/share/box/layers/top first: No such file or directory (os error 2)"
        )
    );
    assert_eq!(
        hint.as_deref(),
        Some(super::missing_layers_hint(&plan().image).as_str())
    );
    let fake = Fake::new().failing("mount overlay", libc::ENOENT);
    let (message, hint) = shown(&run(fake, &plan()).0.unwrap_err());
    assert!(
        message.starts_with(&format!("mounting overlayfs at {ROOT} (lowerdir=1:0,")),
        "{message}"
    );
    assert!(
        message.ends_with(": No such file or directory (os error 2)"),
        "{message}"
    );
    assert!(!hint.unwrap().contains("layers were removed"));
}

#[test]
fn more_layers_than_overlayfs_stacks_get_a_copy_and_a_notice_saying_why() {
    let mut plan = plan();
    let Storage::Overlay { lowers, .. } = &mut plan.storage else {
        unreachable!()
    };
    *lowers = (0..501).rev().map(|i| i.to_string()).collect();
    let (outcome, calls, notices) = run(Fake::new(), &plan);
    assert_eq!(outcome.unwrap(), StorageKind::Copy);
    assert_eq!(
        notices,
        [
            "the image of box dev has 501 layers, and overlayfs stacks at most 500; using a full copy of the image instead: it takes the image's size on disk again and a while to build once"
        ]
    );
    assert!(!calls.iter().any(|c| c.starts_with("mount overlay")));

    // 500 are mounted, their options within a page.
    let Storage::Overlay { lowers, .. } = &mut plan.storage else {
        unreachable!()
    };
    lowers.remove(0);
    let (outcome, calls, _) = run(Fake::new(), &plan);
    assert_eq!(outcome.unwrap(), StorageKind::Overlay);
    let mount = calls
        .iter()
        .find(|c| c.starts_with("mount overlay"))
        .unwrap();
    assert!(mount.len() < 4096, "{} bytes", mount.len());
}

#[test]
fn options_longer_than_a_page_name_the_long_paths() {
    let mut plan = plan();
    let long = PathBuf::from(format!("/{}", "s".repeat(2100)));
    let Storage::Overlay { upper, work, .. } = &mut plan.storage else {
        unreachable!()
    };
    *upper = long.join("upper");
    *work = long.join("work");
    let (message, hint) = shown(&run(Fake::new(), &plan).0.unwrap_err());
    assert!(
        message.contains("more than the 4095 mount(2) takes: the paths of its upper and work directories are 2107 and 2106 bytes long"),
        "{message}"
    );
    assert_eq!(
        hint.as_deref(),
        Some("keep box's store at a shorter path (XDG_DATA_HOME)")
    );
}

#[test]
fn mount_points_are_made_inside_the_box_files_for_file_binds() {
    let mut plan = plan();
    plan.mounts = vec![
        bind("/srv/data", "/opt/deep/data"),
        Mount {
            kind: MountKind::BindFile,
            ..bind("/srv/data", "/etc/box/xauth")
        },
    ];
    let (outcome, calls, _) = run(Fake::new(), &plan);
    outcome.unwrap();
    let made: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("mkdir") || c.starts_with("create"))
        .collect();
    assert_eq!(
        made,
        [
            "mkdir /opt 755",
            "mkdir /opt/deep 755",
            "mkdir /opt/deep/data 755",
            "mkdir /etc/box 755",
            "create /etc/box/xauth 644"
        ]
    );
    assert!(
        calls.contains(&"move-mount tree:/srv/data /etc/box/xauth".to_owned()),
        "{calls:#?}"
    );

    // A mount point that cannot be made names itself.
    let fake = Fake::new().failing("mkdir /opt/deep", libc::EROFS);
    let err = run(fake, &plan).0.unwrap_err();
    assert_eq!(
        shown(&err).0,
        "creating the mount point /opt/deep/data in the box: Read-only file system (os error 30)"
    );
}

#[test]
fn a_missing_source_is_one_clear_error_with_the_mounts_hint() {
    let mut fake = Fake::new();
    fake.on_host.remove(Path::new("/srv/data"));
    let (outcome, calls, _) = run(fake, &plan());
    assert_eq!(
        shown(&outcome.unwrap_err()),
        (
            "/srv/data does not exist (to be mounted at /data in the box)".into(),
            Some("create /srv/data on the host".into())
        )
    );
    assert!(!calls.iter().any(|c| c.contains("/data")), "{calls:?}");

    let mut fake = Fake::new();
    fake.on_host.remove(Path::new("/dev"));
    assert_eq!(
        shown(&run(fake, &plan()).0.unwrap_err()).1.as_deref(),
        Some("create it on the host, then start the box again")
    );

    // There but not reachable (EACCES on the way) is not "does not exist".
    let fake = Fake::new().failing("exists /srv/data", libc::EACCES);
    let (message, _) = shown(&run(fake, &plan()).0.unwrap_err());
    assert_eq!(
        message,
        "/srv/data cannot be reached (to be mounted at /data in the box): permission denied"
    );
}

#[test]
fn every_failing_step_names_what_it_was_doing() {
    let dir = "/home/alice/.local/share/box/containers/dev";
    let cases = [
        ("unshare", "unshare(CLONE_NEWNS | CLONE_NEWUTS)"),
        ("propagation /", "making / a recursive slave mount"),
        ("sethostname", "setting the hostname devbox"),
        ("clone-tree", "cloning the host's mount tree"),
        ("owner", &format!("reading {dir}/upper")),
        ("chown", &format!("changing the owner of {dir}/upper")),
        ("chdir /home", &format!("entering {dir}/lowers")),
        ("open /", &format!("opening {ROOT}")),
        ("clone-tree /dev", "mounting /dev at /dev in the box"),
        ("move-mount tree:/dev", "mounting /dev at /dev in the box"),
        ("tmpfs", "mounting tmpfs at /run in the box"),
        (
            "move-mount tree:/ /run/host",
            "mounting / at /run/host in the box",
        ),
        ("openat2 /run", "creating the mount point /run in the box"),
        ("fchdir", "entering the box root"),
        ("pivot_root", "pivot_root into the box root"),
        ("umount-detach .", "detaching the host root"),
        ("chdir /$", "chdir /"),
    ];
    for (call, doing) in cases {
        let fake = Fake::new().failing(call, libc::EACCES);
        let err = run(fake, &plan()).0.unwrap_err();
        assert_eq!(
            shown(&err).0,
            format!("{doing}: Permission denied (os error 13)"),
            "failing {call}"
        );
    }
}

#[test]
fn the_mounts_below_a_volume_come_from_mountinfo_unescaped() {
    let mountinfo = "\
22 1 0:21 / / rw,relatime - ext4 /dev/sda1 rw
30 22 0:30 / /srv/ro rw - ext4 /dev/sda1 rw
31 30 0:31 / /srv/ro/sub rw - tmpfs tmpfs rw
32 31 0:32 / /srv/ro/sub/deeper rw - tmpfs tmpfs rw
33 22 0:33 / /srv/ro\\040two/x rw - tmpfs tmpfs rw
34 22 0:34 / /srv/rother rw - tmpfs tmpfs rw
";
    assert_eq!(
        mounts_below(mountinfo, Path::new("/srv/ro")),
        vec![
            PathBuf::from("/srv/ro/sub"),
            PathBuf::from("/srv/ro/sub/deeper")
        ]
    );
    assert_eq!(
        mounts_below(mountinfo, Path::new("/srv/ro two")),
        vec![PathBuf::from("/srv/ro two/x")]
    );
    assert_eq!(unescape_mountinfo("a\\134b\\011c\\9"), "a\\b\tc\\9");
}

#[test]
fn a_cdi_mount_gets_its_flags_with_those_the_host_locked() {
    let mut plan = plan();
    plan.mounts = vec![Mount {
        kind: MountKind::BindFile,
        restrict: crate::runtime::plan::Restrictions {
            nosuid: true,
            nodev: true,
            noexec: false,
        },
        ..bind("/srv/data", "/usr/lib/lib.so")
    }];
    // mount_setattr(2) only sets flags: the mount alone, a file has nothing below it.
    let (outcome, calls, _) = run(Fake::new(), &plan);
    outcome.unwrap();
    assert!(
        calls.contains(&"mount_setattr /usr/lib/lib.so nosuid and nodev".to_owned()),
        "{calls:#?}"
    );
    // Without it, a remount: a flag the host locked on the source's mount must stay, or
    // the kernel refuses.
    let mut fake = Fake::new().failing("mount_setattr", libc::ENOSYS);
    fake.flags
        .insert("fd:/usr/lib/lib.so".into(), StatVfsMountFlags::NOEXEC);
    let (outcome, calls, _) = run(fake, &plan);
    outcome.unwrap();
    assert!(
        calls.contains(&"remount fd:/usr/lib/lib.so BIND|NODEV|NOEXEC|NOSUID".to_owned()),
        "{calls:#?}"
    );
}

#[test]
fn a_mount_point_is_found_in_the_mount_it_lies_in_and_never_through_a_symlink_out() {
    let mut plan = plan();
    plan.mounts.push(bind("/srv/data", "/home/alice/vol"));
    let mut fake = Fake::new();
    fake.on_host.insert("/srv/data".into());
    let (outcome, fake, _) = run_keeping(fake, &plan);
    let applied = outcome.unwrap();
    // The box's own filesystems: resolved in their root; the home: below it.
    assert!(fake.lookups.contains(&"in-root /data".to_owned()));
    assert!(fake.lookups.contains(&"in-root /run/host".to_owned()));
    assert!(
        fake.lookups.contains(&"beneath /home/alice/vol".to_owned()),
        "{:#?}",
        fake.lookups
    );
    // Handed back: the root and the tmpfs, not the shared mounts; the points made.
    assert_eq!(applied.root, FakeFd("/".into()));
    let own: Vec<&Path> = applied.own.iter().map(|(at, _)| at.as_path()).collect();
    assert_eq!(own, [Path::new("/run")]);
    let made: Vec<&Path> = applied.made.iter().map(PathBuf::as_path).collect();
    assert_eq!(
        made,
        [
            Path::new("/run/host"),
            Path::new("/data"),
            Path::new("/home/alice/vol")
        ]
    );

    // The image's `/opt/data -> /tmp/x`: the lookup crosses a mount, and the start is
    // refused naming the symlink, before anything is mounted there.
    let mut plan = self::plan();
    plan.mounts = vec![bind("/srv/data", "/opt/data/v")];
    let mut fake = Fake::new().failing("openat2 /opt/data", libc::EXDEV);
    fake.in_box.insert("opt".into());
    fake.links
        .insert("/opt/data/v".into(), ("opt/data".into(), "/tmp/x".into()));
    let (outcome, calls, _) = run(fake, &plan);
    let err = outcome.unwrap_err();
    assert_eq!(
        shown(&err).0,
        "creating the mount point /opt/data/v in the box: the path leads out of the box's own files, through the symlink /opt/data -> /tmp/x"
    );
    assert!(crate::sys::boxfs::is_leads_out(&err));
    assert!(
        !calls.iter().any(|c| c.starts_with("move-mount")),
        "{calls:#?}"
    );
}
