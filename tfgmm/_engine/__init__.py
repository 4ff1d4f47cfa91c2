"""The engine every covariance family runs on: compiled CAVI loops."""
