"""The learner server: sign-in at the door, one page and one kernel per learner, held to a cap."""
