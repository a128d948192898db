"""Records: the database tables and the Records store, the one way in to learners, attempts, sessions and history."""
