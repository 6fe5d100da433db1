"""The `gitml` command line: a thin shell over the library."""
