"""What is done with scores: ranking metrics, the correlation job, the leaderboard and its
figures, precomputed score tables, the few-shot predictor and its graph features."""
