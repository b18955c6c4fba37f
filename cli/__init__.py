"""The `casetrail` command line: the entrypoint above the application and the workers."""
