import os

# Quiet TensorFlow's start-up banner in every process the suite starts.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

pytest_plugins = ["pytester"]
