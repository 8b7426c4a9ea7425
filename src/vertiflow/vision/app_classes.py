"""The app's condition ids (Skin-Twin-AI's fixed class list, `skin.CLASSES`) for a
dataset's class names, which exports spell in their own ways (`Skin Redness`,
`skin_redness`): the app reads a box's class id, so a dataset's own ids must map onto
the app's, or be warned about."""

from __future__ import annotations

import re
import unicodedata


def class_key(name: str) -> str:
    """What two spellings of one class name share: `Skin-Redness`, `Skin Redness`,
    `skin_redness` and `SKINREDNESS` give one key (case, spaces, hyphens and underscores
    aside, in Unicode's composed form), as annotation tools and people write them."""
    return re.sub(r"[\s_-]+", "", unicodedata.normalize("NFC", name).casefold())


def app_class_matches(names: dict[int, str]) -> dict[int, int | None]:
    """Model class id -> the app's id of the condition its name spells (its position in
    `skin.CLASSES`), or None; names compare by `class_key`, so `Skin Redness`
    or `wrinkles` (as Roboflow and Label Studio projects write them) are the app's."""
    from vertiflow.vision.skin import CLASSES

    app = {class_key(c): i for i, c in enumerate(CLASSES)}
    return {i: app.get(class_key(name)) for i, name in names.items()}


def app_class_ids(names: dict[int, str]) -> dict[int, int]:
    """Model class id -> the id Skin-Twin-AI's app uses for that condition, so a detector
    trained on some of the ten answers in the app's ids. A dataset with any other class
    name keeps its own ids (mixing would collide); `app_class_warning` says so."""
    matches = app_class_matches(names)
    if all(m is not None for m in matches.values()):
        return matches
    return {i: i for i in names}


def app_class_warning(names: list[str]) -> str | None:
    """Why the app will misread a detector trained with these class names, or None.

    With some of the app's names and some others, or names only close to the app's
    (`Dark Spot`), the detector keeps the dataset's own ids, which the app reads as its
    own conditions: each name it does not know is named, with the ids the app gets. A
    dataset with no name near the app's is another detector, left alone."""
    import difflib

    from vertiflow.vision.skin import CLASSES

    matches = app_class_matches(dict(enumerate(names)))
    keys = {class_key(c): c for c in CLASSES}
    unknown = [n for i, n in enumerate(names) if matches[i] is None]
    near = {n: difflib.get_close_matches(class_key(n), keys, n=1, cutoff=0.75) for n in unknown}
    if not unknown or (len(unknown) == len(names) and not any(near.values())):
        return None
    shown = ", ".join(
        f"{n!r}" + (f" (the app's {keys[near[n][0]]!r}?)" if near[n] else "") for n in unknown
    )
    received = ", ".join(
        f"{i} for {n!r} "
        + (f"(the app's {CLASSES[i]})" if i < len(CLASSES) else "(none of the app's)")
        for i, n in enumerate(names)  # app_class_ids keeps the dataset's ids here
    )
    return (
        f"class name(s) {shown} match(es) none of the app's conditions ({', '.join(CLASSES)}; "
        "compared ignoring case, spaces, hyphens and underscores), so the detector answers "
        f"in the dataset's own class ids, which the app reads as its own: {received}. "
        "Rename each class in 'names' as the app spells it (the labels keep their ids); a "
        "condition the app lacks cannot be one of its answers."
    )
