"""Prompt, answer parsing and caption assembly: identity text verbatim, only the scene from the VLM."""

from __future__ import annotations

import random
import re

import pytest

from orchestrator.captions.scene import SCENE_FIELDS, SceneDescription, build_prompt, parse_scene
from orchestrator.captions.template import assemble_caption, normalise_caption

GOOD_ANSWER = """pose: standing barefoot, three-quarter view
expression: concerned expression with furrowed brows
action: looking down at something blue
setting: near water edge
lighting: warm sunset light
materials: casual shirt rolled"""


def assert_template_valid(caption: str, profile) -> None:
    assert caption.startswith("a 3d animated character, pixar " + ", ".join(profile.rendering_terms) + ", ")
    assert f", {profile.character_text}, " in caption
    assert ", pixar film quality, " in caption
    assert "\n" not in caption and "  " not in caption and not caption.endswith((",", "."))
    assert caption.index(profile.character_text) < caption.index("pixar film quality")


def test_prompt_asks_only_for_the_varying_fields(luca):
    prompt = build_prompt(luca)
    for field in SCENE_FIELDS:
        assert re.search(rf"^{field}: <", prompt, re.MULTILINE)
    assert luca.name in prompt and luca.film in prompt
    assert all(term in prompt for term in luca.forbidden)
    assert not any(phrase in prompt for phrase in luca.description)  # identity is never asked for


def test_labelled_lines_are_parsed():
    scene = parse_scene(GOOD_ANSWER)
    assert scene == SceneDescription(
        pose="standing barefoot, three-quarter view", expression="concerned expression with furrowed brows",
        action="looking down at something blue", setting="near water edge", lighting="warm sunset light",
        materials="casual shirt rolled",
    )


def test_markdown_bullets_bold_labels_and_chatter_are_tolerated():
    answer = ("Sure! Here is the description:\n- **Pose**: sitting on a rock.\n* Expression - big smile\n"
              "1. LIGHTING = soft overcast light\nMaterial: denim\nI hope this helps.")
    scene = parse_scene(answer)
    assert (scene.pose, scene.expression, scene.lighting) == ("sitting on a rock", "big smile",
                                                              "soft overcast light")
    assert scene.setting == "" and scene.action == "" and scene.materials == "denim"


def test_json_answer_is_parsed():
    answer = 'Answer: {"Poses": "running", "expression": "wide grin", "material": ["wet shirt", "sand"]}'
    scene = parse_scene(answer)
    assert (scene.pose, scene.expression, scene.materials) == ("running", "wide grin", "wet shirt, sand")


def test_none_answers_and_forbidden_traits_are_dropped(luca):
    answer = "pose: none\nexpression: smiling, blue eyes sparkling\naction: N/A\nsetting: beach, blonde girl nearby"
    scene = parse_scene(answer, forbidden=luca.forbidden)
    assert scene.pose == "" and scene.action == ""
    assert scene.expression == "smiling" and scene.setting == "beach"


def test_long_field_is_cut_to_a_few_words():
    scene = parse_scene("setting: " + " ".join(f"word{i}" for i in range(40)))
    assert 0 < len(scene.setting.split()) <= 8


def test_random_bytes_never_crash_and_never_reach_the_caption(luca):
    rng = random.Random(5)
    alphabet = [chr(c) for c in range(0, 0x250)] + ["\ufffd", "\n", ":", "{", "}", "pose", "lighting"]
    for _ in range(300):
        answer = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        scene = parse_scene(answer, forbidden=luca.forbidden)
        caption = assemble_caption(luca, scene)
        assert_template_valid(caption, luca)
        assert re.fullmatch(r"[A-Za-z0-9 ,'()\-]+", caption), caption


def test_caption_follows_the_template_with_profile_text_verbatim(luca):
    caption = assemble_caption(luca, parse_scene(GOOD_ANSWER, forbidden=luca.forbidden))
    assert_template_valid(caption, luca)
    assert caption.endswith(", ".join(("warm sunset light", *luca.material_terms, "casual shirt rolled")))
    pose_part = caption.split(luca.character_text + ", ")[1].split(", pixar film quality")[0]
    assert pose_part == ("concerned expression with furrowed brows, standing barefoot, three-quarter view, "
                         "looking down at something blue, near water edge")


def test_empty_scene_still_gives_a_template_valid_caption(luca):
    caption = assemble_caption(luca, SceneDescription())
    assert_template_valid(caption, luca)
    assert caption.endswith("pixar film quality, " + ", ".join(luca.material_terms))


def test_vlm_repeating_profile_text_does_not_duplicate_or_move_it(luca):
    scene = SceneDescription(pose=luca.description[0], lighting="Smooth Shading", materials="wet shirt")
    caption = assemble_caption(luca, scene)
    assert_template_valid(caption, luca)
    assert caption.lower().count(luca.description[0].lower()) == 1
    assert caption.lower().count("smooth shading") == 1


@pytest.mark.parametrize(("raw", "expected"), [
    ("  a   b ,c\n,d  ", "a b, c, d"),
    ("smiling , smiling, Smiling, grin", "smiling, grin"),
    ("a,,, ,b.", "a, b"),
    ("wet wet wet shirt; sand sand", "wet shirt, sand"),
    ("near the sea near the sea, rock", "near the sea, rock"),
    ("Luca (2021) , boy .", "Luca (2021), boy"),
])
def test_normalisation(raw, expected):
    assert normalise_caption(raw) == expected
