"""`gitml sweep`: params searched by trials that are ordinary gitml runs."""
