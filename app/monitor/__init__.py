"""Monitoring: drift against the training reference, performance with ground truth, and the
metrics and retraining decisions that follow from them."""
