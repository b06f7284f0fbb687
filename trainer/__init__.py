"""robocar-trainer's engine: the scripts at the top call into these modules."""
__version__ = "0.1.0"
