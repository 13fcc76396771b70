//! Finding the Docker engine the way the docker CLI does, and the preflight check (`doctor`).
