"""Feldman-Zhang memorization/influence: planted examples, formulas against direct masked means,
resume from the chunk cache, loading released per-run arrays."""

import os

import numpy as np
import pytest
from torch import nn

from redundancy.errors import RedundancyError
from redundancy.longtail import estimate_memorization, load_fz_runs, memorization
from redundancy.longtail.subsample import draw_runs
import redundancy.longtail.subsample as subsample


def _direct(M, C, Cte):
    """Masked means written out example by example (independent of the vectorised estimator)."""
    T, n = M.shape
    mem = np.zeros(n)
    infl = np.zeros((Cte.shape[1], n))
    for i in range(n):
        ins = [t for t in range(T) if M[t, i]]
        outs = [t for t in range(T) if not M[t, i]]
        if not ins or not outs:
            continue
        mem[i] = sum(C[t, i] for t in ins) / len(ins) - sum(C[t, i] for t in outs) / len(outs)
        for j in range(Cte.shape[1]):
            infl[j, i] = sum(Cte[t, j] for t in ins) / len(ins) - sum(Cte[t, j] for t in outs) / len(outs)
    return mem, infl


def test_formulas_match_direct_masked_means(rng):
    T, n, m = 23, 17, 9
    M = rng.random((T, n)) < 0.7
    M[:, 3] = True  # always in: undefined
    C = rng.random((T, n)) < 0.6
    Cte = rng.random((T, m)) < 0.5
    res = estimate_memorization(M, C, Cte, top_k=4)
    mem, infl = _direct(M, C, Cte)
    np.testing.assert_allclose(res.mem, mem, atol=1e-12)
    np.testing.assert_allclose(res.infl, infl, atol=1e-6)
    assert not res.defined[3] and res.mem[3] == 0 and res.defined.sum() == n - 1
    np.testing.assert_allclose(res.max_infl, infl.max(1), atol=1e-12)
    np.testing.assert_allclose(res.top_infl, -np.sort(-infl, axis=1)[:, :4], atol=1e-12)
    np.testing.assert_allclose(infl[np.arange(m), res.max_infl_index], infl.max(1), atol=1e-12)
    i = 5
    pin, pout = C[M[:, i], i].mean(), C[~M[:, i], i].mean()
    se = np.sqrt(pin * (1 - pin) / M[:, i].sum() + pout * (1 - pout) / (~M[:, i]).sum())
    assert res.mem_se[i] == pytest.approx(se)
    # large problems keep only the top-k, never a dense matrix
    assert estimate_memorization(M, C, Cte, max_dense=10).infl is None
    tab = res.example_table()
    assert list(tab.columns[:4]) == ["index", "label", "mem", "mem_se"] and len(tab) == n
    assert len(res.test_table()) == m and res.to_dict()["n_train"] == n and "n_models=23" in repr(res)


def test_bad_input_is_refused(rng):
    M = rng.random((5, 4)) < 0.5
    with pytest.raises(RedundancyError, match="0 and 1"):
        estimate_memorization(M, np.full((5, 4), 2))
    with pytest.raises(RedundancyError, match="same shape"):
        estimate_memorization(M, M[:, :3])
    with pytest.raises(RedundancyError, match="n_models"):
        memorization(lambda: nn.Linear(2, 2), (np.zeros((5, 2)), np.array([0, 1, 0, 1, 0])), n_models=1)


def _planted(seed=0):
    """3 Gaussian classes in 20-D; one singleton with a flipped label, a group of 6 exact duplicates
    of another point, all with the same flipped label."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), 30)
    X = rng.normal(size=(90, 20)) * 0.7 + 2.0 * np.eye(3, 20)[y]
    single = 0                       # a class-0 point labelled 1
    y[single] = 1
    X[84:90] = X[84]                 # six exact copies of a class-2 point ...
    y[84:90] = 0                     # ... all labelled 0 (same "mislabel")
    return X.astype(np.float32), y.astype(np.int64)


def _mlp():
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 3))


def test_planted_flipped_label_memorized_duplicates_not():
    X, y = _planted()
    res = memorization(_mlp, (X, y), n_models=32, epochs=40, batch_size=32, lr=0.01, seed=0)
    assert res.mem[0] > 0.6                       # the singleton: fit only when trained on
    assert res.p_out[0] < 0.2 and res.p_in[0] > 0.8
    assert np.all(np.abs(res.mem[84:90]) < 0.15)  # duplicates: a copy is (almost) always in the subset
    assert res.p_out[84:90].min() > 0.8
    typical = np.setdiff1d(np.arange(84), [0])
    assert np.median(np.abs(res.mem[typical])) < 0.05
    assert np.argmax(res.mem) == 0


def test_masks_follow_draw_runs_and_ratio():
    X, y = _planted()
    res = memorization(_mlp, (X, y), n_models=6, epochs=1, seed=3, chunk_size=4)
    sub, _, _ = draw_runs(90, 6, 0.7, seed=3)
    counts = np.bincount(sub.ravel(), minlength=90)
    np.testing.assert_array_equal(res.n_in, counts)
    assert sub.shape == (6, 63) and res.n_out.tolist() == (6 - counts).tolist()
    # prefix-stable: more models keep the first ones' subsets
    np.testing.assert_array_equal(draw_runs(90, 9, 0.7, seed=3)[0][:6], sub)


def test_resume_from_chunk_cache(tmp_path, monkeypatch):
    X, y = _planted()
    kw = dict(n_models=6, epochs=2, seed=1, chunk_size=2, cache_dir=tmp_path)
    full = memorization(_mlp, (X, y), **kw)
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 3
    os.remove(files[0])  # as if killed before that chunk finished
    calls = []
    real = subsample.train_ensemble

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(subsample, "train_ensemble", counting)
    again = memorization(_mlp, (X, y), **kw)
    assert len(calls) == 1  # only the lost chunk is retrained
    np.testing.assert_array_equal(again.mem, full.mem)
    np.testing.assert_array_equal(again.max_infl, full.max_infl)


def test_load_fz_runs_per_run_and_stacked(tmp_path, rng):
    T, n, m = 12, 15, 7
    sub = [np.sort(rng.choice(n, 10, replace=False)) for _ in range(T)]
    M = np.zeros((T, n), bool)
    for t, s in enumerate(sub):
        M[t, s] = True
    C, Cte = rng.random((T, n)) < 0.7, rng.random((T, m)) < 0.6
    for t in range(T):
        np.savez(tmp_path / f"run{t:03d}.npz", subsample_idx=sub[t], correctness_train=C[t].astype(np.int8),
                 correctness_test=Cte[t].astype(np.int8), correctness_removed=C[t][~M[t]])
    res = load_fz_runs(tmp_path)
    mem, infl = _direct(M, C, Cte)
    np.testing.assert_allclose(res.mem, mem, atol=1e-12)
    np.testing.assert_allclose(res.infl, infl, atol=1e-6)
    stacked = tmp_path / "stacked"
    stacked.mkdir()
    np.savez(stacked / "all.npz", trainset_mask=M, trainset_correctness=C, testset_correctness=Cte)
    np.testing.assert_allclose(load_fz_runs(stacked / "all.npz").mem, mem, atol=1e-12)
    np.savez(tmp_path / "zbad.npz", subsample_idx=np.array([99]), correctness_train=C[0], correctness_test=Cte[0])
    with pytest.raises(RedundancyError, match="subsample_idx"):
        load_fz_runs(tmp_path)
    with pytest.raises(RedundancyError, match="not found"):
        load_fz_runs([tmp_path / "nope.npz"])


@pytest.mark.parametrize("seed", [float("inf"), float("nan"), 0.0, True, -1, 2 ** 63])
def test_memorization_and_draw_runs_refuse_a_seed_that_is_not_an_integer(seed):
    from torch import nn

    from redundancy.errors import RedundancyError
    from redundancy.longtail import memorization
    from redundancy.longtail.subsample import draw_runs

    X = np.random.default_rng(0).normal(size=(20, 3)).astype("float32"); y = np.arange(20) % 2
    with pytest.raises(RedundancyError, match="seed"):
        memorization(lambda: nn.Linear(3, 2), (X, y), n_models=2, epochs=1, seed=seed)
    with pytest.raises(RedundancyError, match="seed"):
        draw_runs(10, 2, 0.5, seed=seed)


def test_memorization_takes_a_numpy_integer_seed():
    from torch import nn

    from redundancy.longtail import memorization

    X = np.random.default_rng(0).normal(size=(20, 3)).astype("float32"); y = np.arange(20) % 2
    a = memorization(lambda: nn.Linear(3, 2), (X, y), n_models=2, epochs=1, seed=np.int64(4))
    b = memorization(lambda: nn.Linear(3, 2), (X, y), n_models=2, epochs=1, seed=4)
    assert a.settings["seed"] == 4 and type(a.settings["seed"]) is int
    np.testing.assert_array_equal(a.mem, b.mem)
