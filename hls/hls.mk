# hls/: see hls/README.md. Sources, tests and targets of this directory are added here.
