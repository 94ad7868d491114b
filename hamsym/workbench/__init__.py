"""The workbench: spec files, the command line, streams, sweeps, plots, river, check."""
