"""One module per spec data file: typed frozen dataclasses and the function that builds them."""
