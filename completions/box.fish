complete --keep-order --exclusive --command box --arguments "(BOX_COMPLETE=fish box -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
