"""The ``edgesep`` command line: one module per command, each registering on :data:`app`."""
