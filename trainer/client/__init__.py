"""The laptop's side (and the car's, for its light install): the scripts'
verbs (cli), cloud jobs (submit, jobs, vertex) and the image (image).
Never imported by a job (docs/architecture.md)."""
