"""Argument checks at the edge of the public API, declarative and shared.

Each ``check_*`` helper either returns a normalised value or raises a
:class:`~redundancy.errors.RedundancyError` whose message names the argument, the value received
and what is allowed, e.g. ``input_shape=(3, -1) has an entry -1 below 1; every size must be an
integer >= 1``. Upper bounds on sizes and counts are part of the checks (the limit is stated in the
message), so an absurd request is refused before anything is allocated or looped over.

:func:`validate_params` is the declarative form (scikit-learn's ``validate_params``): one decorator
per public function maps each argument to a constraint (:class:`Int`, :class:`Float`,
:class:`Shape`, :class:`Choice`, :class:`Module`, :class:`Seed`, ...). Only the arguments the
caller passed are checked (defaults are trusted); an unknown keyword argument is a
:class:`~redundancy.errors.RedundancyError` naming the allowed ones.

Limits (override with environment variables of the same name, e.g. ``REDUNDANCY_MAX_BYTES``):

- :data:`MAX_NUMEL` elements in one shape (2**27, 1 GiB in float64),
- :data:`MAX_BYTES` bytes for one array the library is about to allocate (4 GiB),
- :data:`MAX_COUNT` for repeat/iteration counts (10**6), :data:`MAX_SEED` for seeds (2**63 - 1).

The package has three modules: :mod:`~redundancy._validation.limits` (the limits and helpers),
:mod:`~redundancy._validation.checks` (the ``check_*`` functions) and
:mod:`~redundancy._validation.constraints` (:func:`validate_params` and its constraints).
"""

from __future__ import annotations

from redundancy._validation.checks import (as_generator, check_array, check_bool, check_choice, check_finite_module,
                                           check_finite_result, check_float, check_int, check_materialised,
                                           check_memory, check_module, check_nonnegative_float, check_param_count,
                                           check_positive_float, check_ranks, check_seed, check_shape,
                                           check_tuple)
from redundancy._validation.constraints import (AnyOf, Array, Bool, CallableArg, Check, Choice, Constraint, Float,
                                                Instance, Int, Items, Module, NoneOr, PathArg, Seed, Shape,
                                                Tensor, model_errors, validate_params)
from redundancy._validation.model_state import guard_model, model_device, model_dtype
from redundancy._validation.results import NOT_EXPORTED, Result, check_result_fields, finite_result, result
from redundancy._validation.limits import (  # noqa: F401 - the helpers are re-exported for ``_v`` users
    MAX_BYTES, MAX_COUNT, MAX_NUMEL, MAX_SEED, _as_finite_float, _env_int, _first_line, _is_int, _short)
from redundancy.errors import RankError, RedundancyError  # noqa: F401 - re-exported for ``_v`` users

