"""What every config model shares."""
from __future__ import annotations


from pydantic import BaseModel, ConfigDict



class Model(BaseModel):
    """A config section: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
