"""The training stage: data-parallel GBDT training on Ray Train, native model files, batch scoring."""
