"""Records: the database tables and the Records store, the one way in to the stored data."""
