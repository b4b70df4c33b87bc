"""Training: schedules, the Lightning module and the trainer loop."""
