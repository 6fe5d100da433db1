"""The HTTP face: the FastAPI app of `gitml serve`."""
