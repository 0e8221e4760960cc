"""Model registry and model families."""

from earshot.models.registry import AudioModel, ModelSpec, count_parameters, create_model, list_models, model_spec, register_model

__all__ = ["AudioModel", "ModelSpec", "count_parameters", "create_model", "list_models", "model_spec", "register_model"]
