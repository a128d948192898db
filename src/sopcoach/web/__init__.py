"""Web: launching the Voila servers; the learner server with sign-in at the door; the secret key."""
