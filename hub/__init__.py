"""Sharing: a Hugging Face Space folder for the Gradio demo (`tuneship space`) and Hub uploads (`tuneship push`)."""

from .push import PushPlan, plan_push, push
from .space import write_space

__all__ = ["PushPlan", "plan_push", "push", "write_space"]
