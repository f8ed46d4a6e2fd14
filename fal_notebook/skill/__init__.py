"""The original fal skill's Python functions, so its users' scripts migrate by changing one import:

    # before: sys.path.insert(0, 'scripts'); from fal_client import submit, check_status, get_result, …
    from fal_notebook.skill import submit, check_status, get_result, image_to_data_uri, poll_pending

Same names, argument order and return shapes as the skill's ``scripts/fal_client.py`` (plain dicts and lists of
fal's JSON), on top of the durable job store: a request submitted here is followed, kept and shown by the rest of
fal_notebook (``fal-notebook jobs``, ``%fal jobs``). Unlike the original, nothing prints or exits, a validation
failure lists every problem at once, and an input field the model's schema does not know (a misspelt option, or
``skip_validation=True`` put into the input by mistake) is reported instead of being sent to fal.
"""

from .api import (
    SkillValidationError,
    check_status,
    file_to_data_uri,
    get_api_key,
    get_model_info,
    get_result,
    image_to_data_uri,
    list_pending,
    poll_pending,
    submit,
    validate_input,
    video_to_data_uri,
)

__all__ = [
    "submit", "check_status", "get_result", "poll_pending", "list_pending", "validate_input", "get_model_info",
    "get_api_key", "file_to_data_uri", "image_to_data_uri", "video_to_data_uri", "SkillValidationError",
]
