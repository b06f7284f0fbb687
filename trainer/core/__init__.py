"""Shared by every side (the job, the car, the laptop's cloud client): errors,
settings, names, files and the bucket, archives and tubs, the car's config,
DonkeyCar and TensorFlow started quietly, the Google API edge, the jobs'
flags, the console, and DonkeyCar's pilots for each format. Imports nothing
from trainer.job, trainer.car or trainer.client (docs/architecture.md)."""
