"""Models the emulator knows that the bundled catalogue does not, each defined only by its OpenAPI document.

They exist so the "any fal model" path (fetch the OpenAPI document, build a form, validate, submit) is tested
end to end against something the catalogue cannot answer from memory. Shipped as Python, not JSON, so they are
installed with the package without any package-data rule.
"""

from __future__ import annotations

import functools
from typing import Any

from fal_notebook.emulator.openapi_doc import IMAGE, build_openapi

__all__ = ["EXTRA_MODEL_IDS", "extra_openapi"]

_IMAGE_SIZE = {
    "title": "ImageSize",
    "type": "object",
    "x-fal-order-properties": ["width", "height"],
    "properties": {
        "width": {"type": "integer", "title": "Width", "default": 512, "minimum": 1, "maximum": 14142},
        "height": {"type": "integer", "title": "Height", "default": 512, "minimum": 1, "maximum": 14142},
    },
}
_SIZE_PRESETS = ["square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"]


def _fast_sdxl() -> dict[str, Any]:
    inputs = {
        "title": "TextToImageInput",
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "title": "Prompt", "description": "The prompt to generate an image from.",
                       "examples": ["an astronaut riding a horse, photorealistic"]},
            "negative_prompt": {"type": "string", "title": "Negative Prompt", "default": ""},
            "image_size": {
                "title": "Image Size",
                "anyOf": [{"$ref": "#/components/schemas/ImageSize"},
                          {"type": "string", "enum": _SIZE_PRESETS}],
                "default": "square_hd",
            },
            "num_inference_steps": {"type": "integer", "title": "Num Inference Steps", "default": 25,
                                    "minimum": 1, "maximum": 65},
            "guidance_scale": {"type": "number", "title": "Guidance scale (CFG)", "default": 7.5,
                               "minimum": 0, "maximum": 20},
            "seed": {"type": "integer", "title": "Seed"},
            "num_images": {"type": "integer", "title": "Num Images", "default": 1, "minimum": 1, "maximum": 8},
            "enable_safety_checker": {"type": "boolean", "title": "Enable Safety Checker", "default": True},
            "format": {"type": "string", "title": "Format", "enum": ["jpeg", "png"], "default": "jpeg"},
        },
        "required": ["prompt"],
    }
    outputs = {
        "title": "Output",
        "type": "object",
        "properties": {
            "images": {"type": "array", "title": "Images", "items": {"$ref": "#/components/schemas/Image"}},
            "timings": {"type": "object", "title": "Timings", "additionalProperties": {"type": "number"}},
            "seed": {"type": "integer", "title": "Seed"},
            "has_nsfw_concepts": {"type": "array", "title": "Has Nsfw Concepts", "items": {"type": "boolean"}},
            "prompt": {"type": "string", "title": "Prompt"},
        },
        "required": ["images", "timings", "seed", "has_nsfw_concepts", "prompt"],
    }
    return build_openapi("fal-ai/fast-sdxl", category="text-to-image", input_schema=inputs,
                         output_schema=outputs, shared={"ImageSize": _IMAGE_SIZE, "Image": IMAGE})


_BUILDERS = {"fal-ai/fast-sdxl": _fast_sdxl}
EXTRA_MODEL_IDS = frozenset(_BUILDERS)


@functools.cache
def _cached(endpoint_id: str) -> dict[str, Any]:
    return _BUILDERS[endpoint_id]()


def extra_openapi(endpoint_id: str) -> dict[str, Any] | None:
    """The OpenAPI document of an extra model (a fresh copy), or ``None``."""
    import copy

    return copy.deepcopy(_cached(endpoint_id)) if endpoint_id in _BUILDERS else None
