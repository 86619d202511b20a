"""fastlstm among the libraries around it: pickling (multiprocessing, Dask), threadpoolctl,
typing, version and build facts."""
import multiprocessing
import os
import pickle

import numpy as np
import pytest

import fastlstm
import keras_fixtures as kf


def _inputs(model, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rng.uniform(-1, 1, [3 if d is None else d for d in layer.batch_shape])
          .astype(np.float32) for layer in model.input_layers]
    return xs if len(xs) > 1 else xs[0]


def _as_list(y):
    return y if isinstance(y, list) else [y]


@pytest.mark.parametrize("flavour,name", [(c["flavour"], c["name"]) for c in kf.cases()])
def test_pickle_round_trip_keeps_weights_config_and_state(flavour, name):
    """Every recorded model, Bidirectional wrappers and nested models included, on its
    recorded inputs."""
    case_ = kf.case(flavour, name)
    model = kf.load(case_, "keras" if "keras" in case_["files"] else "h5")
    d = kf.data(case_)
    op = next(op for op in case_["protocol"] if op["op"] == "predict")
    xs = [d[k] for k in op["inputs"]]
    x = xs if len(xs) > 1 else xs[0]
    batch_size = op.get("batch_size")
    if model.stateful:
        model.predict(x, batch_size=batch_size)  # a carried state to travel along
    clone = pickle.loads(pickle.dumps(model))
    assert clone.file_format == model.file_format
    for a, b in zip(_as_list(model.predict(x, batch_size=batch_size)),
                    _as_list(clone.predict(x, batch_size=batch_size))):
        assert np.array_equal(a, b)


def _predict_in_worker(args):
    model, x = args
    return model.predict(x)


def test_models_travel_to_worker_processes():
    model = kf.load(kf.case("keras3", "stacked"), "keras")
    xs = [_inputs(model, seed) for seed in range(4)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        got = pool.map(_predict_in_worker, [(model, x) for x in xs])
    for g, x in zip(got, xs):
        assert np.array_equal(g, model.predict(x))


def test_dask_predict_on_a_local_cluster_of_worker_processes():
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    import fastlstm.dask

    model = kf.load(kf.case("keras2", "stacked"), "h5")                 # (None, 7, 3) -> 2
    x = np.random.default_rng(5).uniform(-1, 1, (50, 7, 3)).astype(np.float32)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        lazy = fastlstm.dask.predict(model, da.from_array(x, chunks=(16, 7, 3)))
        assert lazy.shape == (50, 2) and lazy.chunks[0] == (16, 16, 16, 2)
        got = client.compute(lazy).result()
    np.testing.assert_array_equal(got, model.predict(x))
    seq = kf.load(kf.case("keras3", "many_to_many_td"), "keras")         # (None, None, 4)
    xs = np.random.default_rng(6).uniform(-1, 1, (9, 5, 4)).astype(np.float32)
    np.testing.assert_array_equal(
        fastlstm.dask.predict(seq, da.from_array(xs, chunks=(4, 2, 4))).compute(
            scheduler="synchronous"), seq.predict(xs))


def test_dask_refuses_stateful_models():
    pytest.importorskip("dask.array")
    import fastlstm.dask

    model = kf.load(kf.case("keras3", "stacked_stateful"), "keras")
    with pytest.raises(ValueError, match="stateful.*cannot be split across workers"):
        fastlstm.dask.predict(model, np.zeros((4, 3, 3), np.float32))


def test_threadpoolctl_sees_and_limits_the_kernels():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = fastlstm.get_num_threads()
    entries = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "fastlstm"]
    assert len(entries) == 1 and entries[0]["num_threads"] == before
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert fastlstm.get_num_threads() == 1
    assert fastlstm.get_num_threads() == before


def test_package_facts():
    assert fastlstm.__version__ == fastlstm.build_info()["version"]
    assert os.path.exists(os.path.join(os.path.dirname(fastlstm.__file__), "py.typed"))
    model = kf.load(kf.case("keras3", "stacked"), "keras")
    assert repr(model).startswith("<fastlstm.Model 'sequential'")
    assert "State" in repr(model.new_state(2))


def test_ray_data_batch_callable():
    import fastlstm.dask

    path = kf.path(kf.case("keras2", "stacked")["files"]["h5"])
    fn = fastlstm.dask.PredictBatch(path)
    x = np.random.default_rng(7).uniform(-1, 1, (5, 7, 3)).astype(np.float32)
    out = fn({"x": list(x), "id": np.arange(5)})
    assert np.array_equal(out["y"], fastlstm.load_model(path).predict(x))
    assert np.array_equal(out["id"], np.arange(5))
    with pytest.raises(ValueError, match="stateful"):
        fastlstm.dask.PredictBatch(kf.path(kf.case("keras3", "stacked_stateful")["files"]["keras"]))
