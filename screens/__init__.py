"""One module per area, plus the shared pieces (header, panels, help, confirmation).
Screens render what services return; they never import a backend client library."""
