"""Assignment 09's torch side: earlier layers ported to PyTorch and a device-agnostic loop.

* ``dlhw.torch_port.layers``    the ports (graded; solution regions carry nbgrader markers)
* ``dlhw.torch_port.training``  get_device, train_one_epoch, evaluate (graded)
* ``dlhw.torch_port.models``    PyTorch models for the notebook (a ConvNet, a tiny transformer)
* ``dlhw.torch_port.compare``   numpy layers against PyTorch on every device and dtype, timings
"""
