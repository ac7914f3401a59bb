// The numpy binding's module (pybind11): each op's functions (bias_act.cpp, rms_norm.cpp) and the
// thread count they share.
#include <pybind11/pybind11.h>

#include <string>

#include "thread_parallel_for.h"
#include "types.h"

namespace py = pybind11;

namespace twinop::numpy_binding {

void define_bias_act(py::module_& m);
void define_rms_norm(py::module_& m);

namespace {

void set_num_threads(int threads) {
  if (threads < 1) throw py::value_error("set_num_threads: threads must be at least 1; got " + std::to_string(threads));
  thread_count() = threads;
}

}  // namespace
}  // namespace twinop::numpy_binding

// twinop-feature: registration
PYBIND11_MODULE(_twinop_numpy, m) {
  using namespace twinop;
  m.doc() = "twinop's numpy binding: bias_act and rms_norm, their backward (and bias_act's double backward) on "
            "the CPU.";
  numpy_binding::define_bias_act(m);
  numpy_binding::define_rms_norm(m);
  m.def("set_num_threads", &numpy_binding::set_num_threads, py::arg("threads"),
        "Threads each call may use, the calling thread included (as torch.set_num_threads); the results are "
        "bit-identical for any count.");
  m.def("get_num_threads", [] { return numpy_binding::thread_count().load(); },
        "Threads each call may use, the calling thread included (set_num_threads).");
  py::tuple names(kNumActivations);
  for (int i = 0; i < kNumActivations; ++i) names[i] = py::str(std::string(kActivationNames[i]));
  m.attr("ACTIVATIONS") = names;
}
