"""The README's examples run as written."""
import os
import re
import shutil

import numpy as np
import pytest

import keras_fixtures as kf

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def _example(title):
    text = open(README, encoding="utf-8").read()
    m = re.search(r"<!-- README example: " + re.escape(title) + r".*?-->\s*```python\n(.*?)```",
                  text, re.S)
    assert m, f"README example {title!r} not found"
    return m.group(1)


def test_400_stocks_example():
    scope = {}
    exec(compile(_example("400 stocks"), "README.md", "exec"), scope)
    model, streams, handles = scope["model"], scope["streams"], scope["handles"]
    assert streams.batch_size == 400 and len(handles) == 400
    assert scope["y"].shape[0] == 3 and np.isfinite(scope["y"]).all()
    assert scope["forecast"].shape == (1, 10, 1)
    # stock 17 restarted at tick 20: its state equals a fresh stream fed ticks 20.. only
    ticks = scope["ticks"]
    fresh = model.new_state(1)
    for tick in ticks[20:]:
        model.predict(tick[17:18, None, :], state=fresh)
    name = fresh.layer_names[0]
    np.testing.assert_allclose(streams.as_dict()[name][1][17], fresh.as_dict()[name][1][0],
                               atol=1e-6)


# The file names the snippets use, and the fixtures saved by Keras under them.
FILES = {"many_to_one.keras": ("keras3", "many_to_one", "keras"),
         "many_to_many.keras": ("keras3", "many_to_many_td", "keras"),
         "one_to_many.keras": ("keras3", "one_to_many_repeat", "keras"),
         "autoencoder.keras": ("keras3", "autoencoder_sequential", "keras"),
         "generator.h5": ("keras2", "stateful_generation_b1", "h5")}
SHAPES = {"many-to-one": ("y", (32, 1)), "many-to-many": ("probs", (2, 9, 3)),
          "one-to-many": ("seq", (4, 7, 2)), "autoencoder": ("reconstruction", (3, 8, 3)),
          "stateful generation": ("text", (1, 20, 3)),
          "stateful forecasting": ("ahead", (1, 24, 1))}


@pytest.fixture(scope="module")
def scope(tmp_path_factory):
    where = tmp_path_factory.mktemp("readme")
    for name, (flavour, case, fmt) in FILES.items():
        shutil.copy(kf.path(kf.case(flavour, case)["files"][fmt]), where / name)
    old = os.getcwd()
    os.chdir(where)
    import fastlstm

    yield {"np": np, "fastlstm": fastlstm}  # the first snippet's imports, for any one alone
    os.chdir(old)


@pytest.mark.parametrize("title", list(SHAPES))
def test_model_shape_examples(scope, title):
    exec(compile(_example(title), "README.md", "exec"), scope)
    name, shape = SHAPES[title]
    assert scope[name].shape == shape and np.isfinite(scope[name]).all()
    if title == "many-to-many":
        np.testing.assert_allclose(scope["probs"].sum(-1), 1, rtol=1e-5)
    if title == "stateful forecasting":
        import fastlstm

        model = scope["model"]
        model.reset_states()
        step = model.predict(scope["series"].reshape(1, -1, 1))
        for k in range(3):  # the Keras feedback loop, by hand
            assert np.array_equal(step[0, 0], scope["ahead"][0, k, 0])
            step = model.predict(step[:, None, :])
        assert isinstance(model, fastlstm.Model)
