"""On the car: will a model drive here, and with which file. Imports
trainer.core only, and no TensorFlow at module level: a Raspberry Pi runs
DonkeyCar without it (docs/architecture.md)."""
