"""Label spaces and skeleton facts shared by datasets, embedded generators, models and metrics (data only)."""
