"""The recommender and the segmentation as MLflow pyfunc models whose state is plain files.

Anyone with MLflow and this package can ``mlflow.pyfunc.load_model("models:/recommender/3")``
and call ``predict``: no platform code path, no unpickling of the fitted object. A fitted model
is written by :func:`save_state` as a directory of ordinary files — ``model.json`` (the class,
its parameters and where every fitted attribute lives), scipy ``.npz`` for sparse matrices (the
user x item interactions stay sparse), ``.npy`` for numeric arrays (``allow_pickle=False``),
parquet for ids and frames — and rebuilt by :func:`load_state`, which only ever instantiates the
classes in :data:`STORABLE_CLASSES`. The pyfunc wrappers are empty shells; MLflow pickles only
them (a few hundred bytes, a reference to the class).

The platform keeps using the native objects: :attr:`StoredModel.native` is the rebuilt
:class:`~pipelines.models.recommender.Recommender` or
:class:`~pipelines.models.segmentation.SegmentationModel`, which ``registry.load_version``
returns after ``unwrap_python_model()``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from scipy import sparse

from pipelines.models import recommender as recommender_module
from pipelines.models import segmentation as segmentation_module

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

MANIFEST = "model.json"
STATE_ARTIFACT = "state"  # the key of the state directory in the pyfunc's artifacts
FORMAT_VERSION = 1
DEFAULT_K = 10
RECOMMENDATION_COLUMNS = ("user_id", "rank", "item_id", "score")
SEGMENT_COLUMNS = ("user_id", "segment_id")
# a dense float array at most this full is stored sparse (item-kNN keeps ~100 neighbours of
# thousands of items) and made dense again on load
SPARSE_STORAGE_DENSITY = 0.25

STORABLE_CLASSES: dict[str, type] = {
    f"{module.__name__}.{name}": getattr(module, name)
    for module, names in (
        (
            recommender_module,
            (
                "PopularityRecommender",
                "CategoryAffinityRecommender",
                "ItemKNNRecommender",
                "EASERecommender",
                "BuyAgainRecommender",
                "RepurchaseRecommender",
                "BlendRecommender",
            ),
        ),
        (segmentation_module, ("SegmentationModel",)),
    )
    for name in names
}


class StateError(ValueError):
    """A model whose state cannot be written as plain files, or a state directory that is not
    one this module wrote."""


# ---- state as files ---------------------------------------------------------------------------


def save_state(model: Any, directory: str | Path) -> Path:
    """Write fitted ``model`` (one of :data:`STORABLE_CLASSES`) under ``directory``.

    Attributes shared between objects (a blend's matrices are its base model's) are written
    once and shared again on load. An attribute of a type with no plain-file form fails here,
    at training time, rather than being pickled.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    writer = _StateWriter(directory)
    manifest = {"format": FORMAT_VERSION, "model": writer.estimator(model, "model")}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1, allow_nan=True))
    return directory


def load_state(directory: str | Path) -> Any:
    """The model :func:`save_state` wrote under ``directory``."""
    directory = Path(directory)
    manifest = json.loads((directory / MANIFEST).read_text())
    if manifest.get("format") != FORMAT_VERSION:
        raise StateError(
            f"{directory / MANIFEST}: state format {manifest.get('format')!r}, this code reads "
            f"{FORMAT_VERSION}; load it with the version of personalize that trained it"
        )
    return _StateReader(directory).value(manifest["model"])


def _class_key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class _StateWriter:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.written: dict[int, dict[str, Any]] = {}  # id(object) -> its spec: write once
        self.keep_alive: list[Any] = []  # ids stay unique while the objects live
        self.names: set[str] = set()

    def estimator(self, model: Any, name: str) -> dict[str, Any]:
        key = _class_key(type(model))
        if key not in STORABLE_CLASSES:
            raise StateError(
                f"{key} cannot be stored as plain files; storable: {sorted(STORABLE_CLASSES)}"
            )
        attributes = {
            attribute: self.value(value, f"{name}.{attribute}")
            for attribute, value in vars(model).items()
        }
        return {"estimator": key, "attributes": attributes}

    def value(self, value: Any, name: str) -> dict[str, Any]:
        shared = self.written.get(id(value))
        if shared is not None:
            return shared
        spec = self._encode(value, name)
        if isinstance(value, np.ndarray | sparse.spmatrix | sparse.sparray | pd.Index | dict):
            self.written[id(value)] = spec
            self.keep_alive.append(value)
        return spec

    def _file(self, name: str, suffix: str) -> tuple[str, Path]:
        # "model.base_.X_" -> "base.X": one flat directory, names that read like attributes
        parts = [part.strip("_") for part in name.split(".")[1:]]
        stem = ".".join(part for part in parts if part) or "value"
        file, number = f"{stem}{suffix}", 1
        while file in self.names:
            number += 1
            file = f"{stem}.{number}{suffix}"
        self.names.add(file)
        return file, self.directory / file

    def _encode(self, value: Any, name: str) -> dict[str, Any]:
        if value is None or isinstance(value, bool | str):
            return {"json": value}
        if isinstance(value, np.generic) and not isinstance(value, np.str_ | np.bytes_):
            return {"json": value.item()}
        if isinstance(value, int | float):
            return {"json": value}
        if isinstance(value, sparse.spmatrix | sparse.sparray):
            file, path = self._file(name, ".npz")
            sparse.save_npz(path, value.tocsr())
            return {"sparse": file, "array": isinstance(value, sparse.sparray)}
        if isinstance(value, np.ndarray):
            return self._array(value, name)
        if isinstance(value, pd.Index) and not isinstance(value, pd.MultiIndex):
            file, path = self._file(name, ".parquet")
            pd.DataFrame({"value": value.to_numpy()}).to_parquet(path, index=False)
            return {"index": file, "dtype": str(value.dtype), "name": value.name}
        if isinstance(value, pd.DataFrame):
            file, path = self._file(name, ".parquet")
            value.to_parquet(path)
            return {"frame": file}
        if isinstance(value, pd.Series):
            file, path = self._file(name, ".parquet")
            value.to_frame("value").to_parquet(path)
            return {"series": file, "name": value.name}
        if isinstance(value, tuple):
            return {"tuple": [self.value(v, f"{name}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return {"list": [self.value(v, f"{name}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, Mapping) and _is_column_mapping(value):
            file, path = self._file(name, ".parquet")
            keys, values = list(value), list(value.values())
            pd.DataFrame({"key": keys, "value": values}).to_parquet(path, index=False)
            return {"mapping": file}
        if isinstance(value, Mapping):
            return {
                "dict": [
                    [self.value(k, f"{name}.key"), self.value(v, f"{name}.{i}")]
                    for i, (k, v) in enumerate(value.items())
                ]
            }
        if _class_key(type(value)) in STORABLE_CLASSES:
            return self.estimator(value, name)
        raise StateError(
            f"{name}: a {type(value).__module__}.{type(value).__qualname__} has no plain-file "
            "form; extend pipelines.models.pyfunc._StateWriter or keep it off the model"
        )

    def _array(self, value: np.ndarray, name: str) -> dict[str, Any]:
        if value.dtype == object:
            if not all(isinstance(v, str) for v in value.ravel()):
                raise StateError(f"{name}: an object array of non-strings has no plain-file form")
            value = value.astype(str)
            file, path = self._file(name, ".npy")
            np.save(path, value, allow_pickle=False)
            return {"npy": file, "object": True}
        if (
            value.ndim == 2
            and value.dtype.kind == "f"
            and value.size
            and np.count_nonzero(value) <= SPARSE_STORAGE_DENSITY * value.size
        ):
            file, path = self._file(name, ".npz")
            sparse.save_npz(path, sparse.csr_matrix(value))
            return {"dense_from_sparse": file}
        file, path = self._file(name, ".npy")
        np.save(path, value, allow_pickle=False)
        return {"npy": file}


def _is_column_mapping(value: Mapping[Any, Any]) -> bool:
    """A long str -> int or str -> str mapping (user -> segment): two parquet columns."""
    if len(value) < 50 or not all(isinstance(k, str) for k in value):
        return False
    kinds = {
        "int" if isinstance(v, int | np.integer) and not isinstance(v, bool) else type(v)
        for v in value.values()
    }
    return kinds in ({"int"}, {str})


class _StateReader:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.loaded: dict[str, Any] = {}  # file -> object: what was shared is shared again

    def _path(self, file: str) -> Path:
        path = (self.directory / file).resolve()
        if path.parent != self.directory.resolve():
            raise StateError(f"{file}: a state file outside {self.directory}")
        return path

    def _once(self, file: str, read: Callable[[Path], Any]) -> Any:
        if file not in self.loaded:
            self.loaded[file] = read(self._path(file))
        return self.loaded[file]

    def value(self, spec: Mapping[str, Any]) -> Any:
        if "json" in spec:
            return spec["json"]
        if "estimator" in spec:
            cls = STORABLE_CLASSES.get(spec["estimator"])
            if cls is None:
                raise StateError(f"{spec['estimator']} is not a storable class")
            # as unpickling does: the fitted attributes, no __init__ (it only stores params)
            model = cls.__new__(cls)
            for attribute, value in spec["attributes"].items():
                setattr(model, attribute, self.value(value))
            return model
        if "sparse" in spec:
            kind = sparse.csr_array if spec.get("array") else sparse.csr_matrix
            return self._once(spec["sparse"], lambda p: kind(sparse.load_npz(p)))
        if "dense_from_sparse" in spec:
            return self._once(spec["dense_from_sparse"], lambda p: sparse.load_npz(p).toarray())
        if "npy" in spec:
            array = self._once(spec["npy"], lambda p: np.load(p, allow_pickle=False))
            return array.astype(object) if spec.get("object") else array
        if "index" in spec:
            return self._once(
                spec["index"],
                lambda p: pd.Index(
                    pd.read_parquet(p)["value"].to_numpy(),
                    dtype=spec["dtype"],
                    name=spec["name"],
                ),
            )
        if "frame" in spec:
            return pd.read_parquet(self._path(spec["frame"]))
        if "series" in spec:
            return pd.read_parquet(self._path(spec["series"]))["value"].rename(spec["name"])
        if "tuple" in spec:
            return tuple(self.value(v) for v in spec["tuple"])
        if "list" in spec:
            return [self.value(v) for v in spec["list"]]
        if "mapping" in spec:
            table = self._once(spec["mapping"], pd.read_parquet)
            return dict(zip(table["key"].tolist(), table["value"].tolist(), strict=True))
        if "dict" in spec:
            return {self.value(k): self.value(v) for k, v in spec["dict"]}
        raise StateError(f"unknown state entry {sorted(spec)}")


# ---- the pyfunc models ------------------------------------------------------------------------


class StoredModel(mlflow.pyfunc.PythonModel):
    """A pyfunc shell around a native model rebuilt from the ``state`` artifact at load."""

    native: Any = None

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.native = load_state(context.artifacts[STATE_ARTIFACT])


class RecommenderPyfunc(StoredModel):
    """``predict(DataFrame[user_id], params={"k": 10})`` -> ``user_id, rank, item_id, score``:
    the top k per user, best first (new users get popularity)."""

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        return recommendations(self.native, model_input, int((params or {}).get("k", DEFAULT_K)))


class SegmentationPyfunc(StoredModel):
    """``predict(DataFrame[user_id, <user_activity inputs>])`` -> ``user_id, segment_id``."""

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        return segments(self.native, model_input)


def recommendations(model: Any, frame: pd.DataFrame, k: int = DEFAULT_K) -> pd.DataFrame:
    """What :class:`RecommenderPyfunc` answers, from the native ``model``."""
    users = frame["user_id"].astype(str).tolist()
    recs = model.recommend(users, k=k)
    recs = recs.assign(user_id=recs["user_id"].astype(str), item_id=recs["item_id"].astype(str))
    return recs[list(RECOMMENDATION_COLUMNS)].reset_index(drop=True)


def segments(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """What :class:`SegmentationPyfunc` answers, from the native ``model``."""
    return pd.DataFrame(
        {
            "user_id": frame["user_id"].astype(str).to_numpy(dtype=object),
            "segment_id": np.asarray(model.predict(frame), dtype=np.int64),
        }
    )


# ---- logging ----------------------------------------------------------------------------------


def recommender_logger(model: Any, users: list[str]) -> Callable[[str], ModelInfo]:
    """``log_model(name)`` for the registry: ``model`` as a :class:`RecommenderPyfunc`, with
    ``users`` (a few known ones) as the input example and ``k`` as a parameter."""
    example = pd.DataFrame({"user_id": [str(u) for u in users]})
    output = recommendations(model, example, DEFAULT_K)
    return _pyfunc_logger(RecommenderPyfunc(), model, example, output, {"k": DEFAULT_K})


def segmentation_logger(model: Any, frame: pd.DataFrame) -> Callable[[str], ModelInfo]:
    """``log_model(name)`` for the registry: ``model`` as a :class:`SegmentationPyfunc`, with
    ``frame``'s first rows (``user_id`` and the model's input columns) as the input example."""
    from pipelines.models.segmentation import INPUT_COLUMNS

    columns = ["user_id", *INPUT_COLUMNS]
    rows = frame[columns]
    complete = rows.dropna()
    example = (complete if len(complete) else rows).head(5).reset_index(drop=True)
    example = example.assign(user_id=example["user_id"].astype(str))
    return _pyfunc_logger(SegmentationPyfunc(), model, example, segments(model, example), None)


def _pyfunc_logger(
    shell: StoredModel,
    model: Any,
    example: pd.DataFrame,
    output: pd.DataFrame,
    params: dict[str, Any] | None,
) -> Callable[[str], ModelInfo]:
    def log_model(name: str) -> ModelInfo:
        import mlflow
        from mlflow.models import infer_signature

        from pipelines.registry import pinned_requirements

        signature = infer_signature(example, output, params=params)
        with tempfile.TemporaryDirectory() as scratch:
            state = save_state(model, Path(scratch) / STATE_ARTIFACT)
            return mlflow.pyfunc.log_model(
                name=name,
                python_model=shell,
                artifacts={STATE_ARTIFACT: str(state)},
                signature=signature,
                input_example=(example, params) if params else example,
                pip_requirements=pinned_requirements(),
            )

    return log_model
