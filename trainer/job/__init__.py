"""What runs in the cloud job's container and in local_train.sh /
local_makemovie.sh: the training run (task, plan, training, export,
evaluate, plots, card, restarts, tracking, background) and the movie.
Imports trainer.core only (docs/architecture.md)."""
