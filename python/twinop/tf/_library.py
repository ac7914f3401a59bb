"""Loads the compiled TensorFlow op library (the REGISTER_OP ops and their kernels)."""
import tensorflow as tf

from .. import _build_info, _loader

ops = tf.load_op_library(_loader.library_path("tensorflow", _build_info.TF_VERSION, tf.__version__, "_twinop_tf.so"))
