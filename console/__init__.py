"""opsconsole: the app shell, the command line, settings and the sandbox."""
