"""Web: launching the Voila servers; the learner server with sign-in at the door, its kernels and kernel zygote; the secret key."""
