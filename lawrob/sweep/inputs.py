"""What a run is built from: its measure, network, data set, initialization and training settings."""

from __future__ import annotations

import jax

from lawrob import data, nets, schedules
from lawrob.sweep.config import RunConfig

__all__ = ["dataset_of", "measure_of", "model_of", "train_options"]


def measure_of(config: RunConfig) -> data.Gaussian | data.Sphere | data.EmbeddedSphere | data.BooleanCube:
    """The run's input distribution mu (``data.MEASURES[measure](d)``; the embedded sphere also reads
    ``intrinsic_dim``).

    Parameters
    ----------
    config : RunConfig
        The run's settings.

    Returns
    -------
    Gaussian, Sphere, EmbeddedSphere or BooleanCube
        The measure.
    """
    if config.measure == "embedded_sphere":
        return data.EmbeddedSphere(config.d, config.intrinsic_dim)
    return data.MEASURES[config.measure](config.d)


def model_of(config: RunConfig) -> nets.MLP:
    """The run's network: d -> width x depth -> 1 with its activation.

    Parameters
    ----------
    config : RunConfig
        The run's settings.

    Returns
    -------
    nets.MLP
        The network.
    """
    return nets.MLP((config.d, *([config.width] * config.depth), 1), activation=config.activation)


def dataset_of(config: RunConfig, key: jax.Array) -> data.Dataset:
    """A data set of the run's generator drawn with ``key`` (the run's own: ``run.keys.data``; other draws for
    the information estimate).

    Parameters
    ----------
    config : RunConfig
        The run's settings.
    key : jax.Array
        The key the data are drawn with.

    Returns
    -------
    data.Dataset
        The data set.
    """
    return data.make_dataset(key, measure_of(config), config.n, config.target, config.noise,
                             amplitude=config.amplitude, flip=config.flip)


def train_options(config: RunConfig) -> dict:
    """The run's shared training options (the keyword arguments of ``train.fit_batched`` besides the per-run
    values); ``schedule`` (a ``schedules.Schedule`` over the run's steps) only when the grid sets one.

    Parameters
    ----------
    config : RunConfig
        The run's settings.

    Returns
    -------
    dict
        Keyword arguments of ``train.fit_batched``.
    """
    options = dict(steps=config.steps, loss=config.loss, optimizer=config.optimizer, batch_size=config.batch_size or None,
                   log_every=config.log_every, stop_loss=config.stop_loss or None)
    if config.schedule != "constant" or config.schedule_warmup:  # the default (a constant rate) passes nothing
        options["schedule"] = schedules.Schedule(config.schedule, config.steps, config.schedule_warmup,
                                                 config.schedule_end)
    return options
