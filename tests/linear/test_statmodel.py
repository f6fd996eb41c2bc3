"""The statistical model's forms against the torch module and a direct loop forward pass."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from redundancy import BasicCNN, RedundancyError, whole_network_tensor
from redundancy.testing.strategies import basic_cnns


@given(net=basic_cnns(), seed=st.integers(0, 10_000))
def test_all_forms_agree(net, seed):
    A, B = net.random_weights(seed)
    X = np.random.default_rng(seed + 1).normal(size=(3, *net.input_shape))
    y_loop = net.forward(A, B, X)                                      # direct conv/pool/FC loops
    W = net.whole_tensor(A, B)
    y_patch = np.einsum("ni,i->n", net.patch_tensor(X).reshape(3, -1), W.reshape(-1))
    np.testing.assert_allclose(y_patch, y_loop, rtol=1e-10, atol=1e-12)
    # Tucker-like form A x_{N+1} B
    np.testing.assert_allclose(net.tucker_like(A, B).reshape(W.shape), W, rtol=1e-12, atol=1e-14)
    # raw-input form M^T vec(W) against the torch module's whole-network tensor
    W_eff = net.effective_weight(A, B)
    res = whole_network_tensor(net.torch_module(A, B), (1, *net.input_shape))
    np.testing.assert_allclose(res.W.reshape(net.input_shape), W_eff, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.einsum("ni,i->n", X.reshape(3, -1), W_eff.reshape(-1)), y_loop,
                               rtol=1e-10, atol=1e-12)


@given(n=st.integers(1, 3), data=st.data())
def test_kronecker_form_stride_equals_kernel(n, data):
    l = tuple(data.draw(st.integers(1, 3)) for _ in range(n))
    mm = tuple(data.draw(st.integers(1, 4)) for _ in range(n))
    extra = tuple(data.draw(st.integers(0, li - 1)) if li > 1 else 0 for li in l)
    d = tuple(li * mi + e for li, mi, e in zip(l, mm, extra))
    q = tuple(data.draw(st.integers(1, mi)) for mi in mm)
    net = BasicCNN(d, l, l, q, K=data.draw(st.integers(1, 3)))
    A, B = net.random_weights(data.draw(st.integers(0, 99)))
    res = whole_network_tensor(net.torch_module(A, B), (1, *d))
    np.testing.assert_allclose(net.kronecker_form(A, B), res.W.reshape(d), rtol=1e-10, atol=1e-12)


def test_overlap_example_unidentifiable():
    """N=1, d=3, l=2, s=1: the antisymmetric W is invisible on the raw input (research note §1.1)."""
    net = BasicCNN((3,), (2,), 1, 1, K=2)
    W = np.array([[0.0, 1.0], [-1.0, 0.0]])
    M = net.patch_matrix().toarray()
    np.testing.assert_allclose(M.T @ W.reshape(-1), 0.0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(input_shape=(4, 4), kernel=(5, 1)), "kernel"),
    (dict(input_shape=(4, 4), kernel=(2, 2), pool=(9, 1)), "pool"),
    (dict(input_shape=(4, 4, 4, 4), kernel=1), "input_shape"),
    (dict(input_shape=(4,), kernel=(2,), K=0), "K"),
])
def test_bad_basic_cnn(kwargs, match):
    with pytest.raises(RedundancyError, match=match):
        BasicCNN(**kwargs)
