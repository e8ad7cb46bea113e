# Makefile: builds infd's runtime library, tools and tests into $(BUILD).
#   make              build (installs missing dependencies first)
#   make run          serve models/ on 127.0.0.1:8000 in the foreground
#   make install      binaries to $(PREFIX)/bin, the systemd unit to /etc/systemd/system
#   make test         unit tests, ONNX node conformance, end-to-end tests
#   make asan         unit tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make conformance  the official ONNX node tests through infd-run (optimizer on and off)
#   make fuzz         libFuzzer on the ONNX loader and the request decoder, FUZZ_SECONDS each
#   make bench        benchmarks against ONNX Runtime, written to docs/benchmarks.md (and
#                     compression to docs/compression.md)
#   make bench-http   only the daemon's HTTP benchmarks (wrk beside nginx), also in bench
#   make bench-sparse only the sparse kernel against the dense one, also in bench
#   make deps         install Debian and Python dependencies
#   make test-gpu     on a CUDA device: backend conformance against the CPU, the ONNX node
#                     tests and the end-to-end tests on cuda (skips, saying why, elsewhere)
#   make bench-gpu    cuBLASLt GEMM and encoder benchmarks against PyTorch on a CUDA device
#   make device-deps  downloads the .deb files a bare GPU machine needs to build (into .debs/;
#                     scripts/device_build.sh unpacks them there and runs make test-gpu)
# BUILD=dir builds elsewhere (several builds can coexist). DEPS_ROOT=dir takes headers,
# libraries and protoc-c from .deb files unpacked under dir instead of the system.

BUILD ?= build
CC := gcc
PYTHON := .venv/bin/python
DEPS_ROOT ?=
ONNX_PROTO := $(DEPS_ROOT)/usr/include/onnx/onnx.proto
PROTOC_C := $(if $(DEPS_ROOT),LD_LIBRARY_PATH=$(DEPS_ROOT)/usr/lib/x86_64-linux-gnu $(DEPS_ROOT)/usr/bin/protoc-c,protoc-c)
FUZZ_SECONDS ?= 600

CUDA_HOME ?= $(if $(wildcard /usr/local/cuda/bin/nvcc),/usr/local/cuda,$(patsubst %/bin/nvcc,%,$(shell command -v nvcc 2>/dev/null)))
NVCC := $(if $(CUDA_HOME),$(wildcard $(CUDA_HOME)/bin/nvcc))

WARN := -Wall -Wextra -Werror
OPT ?= -O2 -g
SAN ?=
CFLAGS := $(OPT) $(SAN) -std=c11 $(WARN) -fopenmp -D_GNU_SOURCE -MMD -MP
# Debian's OpenMP build of OpenBLAS, named by path: the pthread build would run a second
# thread pool that fights ours (measured: 30-60x slower at 2 threads).
BLAS_DIR := $(DEPS_ROOT)/usr/lib/x86_64-linux-gnu/openblas-openmp
CPPFLAGS := -Iruntime -Icuda -I$(BUILD)/gen -I$(DEPS_ROOT)/usr/include/x86_64-linux-gnu/openblas-openmp
LDLIBS := -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas -lprotobuf-c -ljansson -lm
ifneq ($(DEPS_ROOT),)
DEPS_LIB := $(DEPS_ROOT)/usr/lib/x86_64-linux-gnu
CPPFLAGS += -isystem $(DEPS_ROOT)/usr/include -isystem $(DEPS_ROOT)/usr/include/x86_64-linux-gnu
LDLIBS += -L$(DEPS_LIB) -Wl,-rpath,$(DEPS_LIB)
endif
LDFLAGS := -fopenmp $(SAN)

RT_MAIN := runtime/rt_run_main.c
RT_SRC := $(filter-out $(RT_MAIN),$(wildcard runtime/*.c))
GEN_SRC := $(BUILD)/gen/onnx.pb-c.c
RT_OBJ := $(RT_SRC:%.c=$(BUILD)/%.o) $(GEN_SRC:.c=.o)

# cuda/: kernels (.cu, nvcc) and the backend's host code (.c, gcc with the toolkit's
# headers); cuBLASLt and cuDNN are opened with dlopen (cuda/cuda_lt.h, cuda/cuda_dnn.h),
# so nothing links them. cudnn.h is looked up on the include path (the toolkit's, then
# CUDNN_INCLUDE=dir, e.g. a cuDNN wheel's include/); without it the cuDNN convolution
# path is compiled out
CUDNN_INCLUDE ?=
ifneq ($(NVCC),)
CU_SRC := $(wildcard cuda/*.cu)
CU_C_SRC := $(wildcard cuda/*.c)
CU_OBJ := $(CU_SRC:%.cu=$(BUILD)/%.o) $(CU_C_SRC:%.c=$(BUILD)/%.o)
CPPFLAGS += -DINFD_HAVE_CUDA
CUDA_CPPFLAGS := -isystem $(CUDA_HOME)/include $(if $(CUDNN_INCLUDE),-isystem $(CUDNN_INCLUDE)) \
                 -DCUDA_LIBDIR='"$(CUDA_HOME)/lib64"'
NVCCFLAGS := -O2 -std=c++17 -gencode arch=compute_80,code=sm_80 \
             -gencode arch=compute_90,code=[sm_90,compute_90] -Icuda -Iruntime -MMD -MP
LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart_static -ldl -lrt \
          -lpthread -lstdc++
BACKENDS := cpu cuda
GPU_TESTS := $(BUILD)/tests/gpu/test_backend_ops
GPU_BENCH := $(BUILD)/tests/gpu/bench_gemm
NCCL_H := $(firstword $(wildcard $(CUDA_HOME)/include/nccl.h /usr/include/nccl.h))
NCCL_SO := $(firstword $(wildcard $(CUDA_HOME)/lib64/libnccl.so /usr/lib/x86_64-linux-gnu/libnccl.so))
else
BACKENDS := cpu
endif

# parallel/: communicators and the tensor-parallel planner, in the runtime library; the
# NCCL communicator only when nvcc and NCCL (header and library) are found
PAR_SRC := $(wildcard parallel/*.c)
CPPFLAGS += -Iparallel
ifneq ($(and $(NCCL_H),$(NCCL_SO)),)
CPPFLAGS += -DINFD_HAVE_NCCL
NCCL_CPPFLAGS := -isystem $(dir $(NCCL_H)) -isystem $(CUDA_HOME)/include
LDLIBS += -L$(dir $(NCCL_SO)) -Wl,-rpath,$(dir $(NCCL_SO)) -lnccl
else
PAR_SRC := $(filter-out parallel/tp_comm_nccl.c,$(PAR_SRC))
endif
PAR_OBJ := $(PAR_SRC:%.c=$(BUILD)/%.o)

SRV_SRC := $(wildcard server/*.c config/*.c)
SRV_OBJ := $(SRV_SRC:%.c=$(BUILD)/%.o)
SRV_LIB_OBJ := $(filter-out $(BUILD)/server/srv_main.o,$(SRV_OBJ))
INFD := $(if $(SRV_SRC),$(BUILD)/infd)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps test unit conformance e2e run install asan fuzz bench bench-http bench-sparse clean \
        test-gpu bench-gpu device-deps
all: deps $(BUILD)/libinfdrt.a $(BUILD)/infd-run $(INFD)
	@echo "built in $(BUILD)/: backends: $(BACKENDS)"

deps:
	@scripts/deps.sh

$(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h &: $(ONNX_PROTO)
	@mkdir -p $(BUILD)/gen
	cp $(ONNX_PROTO) $(BUILD)/gen/onnx.proto
	cd $(BUILD)/gen && $(PROTOC_C) --c_out=. onnx.proto

# generated code is not ours: no -Werror on it
$(BUILD)/gen/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c
	$(CC) -O2 -g -c $< -o $@

$(BUILD)/runtime/%.o: runtime/%.c $(BUILD)/gen/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/server/%.o $(BUILD)/config/%.o: CPPFLAGS += -Iserver -Iconfig
$(BUILD)/server/%.o: server/%.c $(BUILD)/gen/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/config/%.o: config/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

SRV_LIBS := -lmicrohttpd -lsystemd -lpthread
$(BUILD)/infd: $(SRV_OBJ) $(BUILD)/libinfdrt.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) $(SRV_LIBS) -o $@

# private: the flags do not leak into the prerequisites (runtime objects) built for them
$(BUILD)/parallel/tp_comm_nccl.o $(BUILD)/tests/test_tp_comm: private CPPFLAGS += $(NCCL_CPPFLAGS)
$(BUILD)/parallel/%.o: parallel/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/cuda/%.o: cuda/%.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(BUILD)/cuda/%.o: cuda/%.c $(BUILD)/gen/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CUDA_CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/libinfdrt.a: $(RT_OBJ) $(CU_OBJ) $(PAR_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/infd-run: $(BUILD)/runtime/rt_run_main.o $(BUILD)/libinfdrt.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# unit tests link the runtime and the server's objects (all but its main)
$(BUILD)/tests/%: tests/unit/%.c $(SRV_LIB_OBJ) $(BUILD)/libinfdrt.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Iserver -Iconfig $(CFLAGS) $< $(SRV_LIB_OBJ) $(BUILD)/libinfdrt.a \
	    $(LDFLAGS) $(LDLIBS) $(SRV_LIBS) -lcmocka -o $@

unit: $(UNIT_BIN)
	@tests/run_unit.sh $(UNIT_BIN)

test: all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory conformance
	@$(MAKE) --no-print-directory e2e
	@$(MAKE) --no-print-directory test-gpu

# the node tests, then the same models with the graph optimizer on and off compared
conformance: all
	@$(PYTHON) tests/conformance/run_onnx_node_tests.py --runner $(BUILD)/infd-run
	@$(PYTHON) tests/conformance/check_optimizer.py --runner $(BUILD)/infd-run

# the daemon driven by tritonclient and curl (INFD_BIN picks the binary), and the
# default models' accuracy through infd-run (INFD_RUN)
e2e: all
	@INFD_BIN=$(BUILD)/infd INFD_RUN=$(BUILD)/infd-run $(PYTHON) -m pytest -q -rs tests/e2e tests/model

# the GPU suites (scripts/test_gpu.sh), each one skipped with a printed reason when CUDA is
# not compiled in or no device is visible; GPU test programs link the runtime library
$(BUILD)/tests/gpu/%: tests/gpu/%.c $(BUILD)/libinfdrt.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CUDA_CPPFLAGS) $(CFLAGS) $< $(BUILD)/libinfdrt.a $(LDFLAGS) $(LDLIBS) -o $@

test-gpu: $(BUILD)/infd-run $(INFD) $(GPU_TESTS)
	@PYTHON=$(PYTHON) scripts/test_gpu.sh $(BUILD)

bench-gpu: $(BUILD)/infd-run $(GPU_BENCH)
	@PYTHON=$(PYTHON) scripts/bench_gpu.sh $(BUILD)

# the Debian packages a bare GPU machine needs to build, as .deb files in .debs/
device-deps:
	@scripts/device_deps.sh

# install the binaries and the systemd unit (DESTDIR for staging, PREFIX for the location)
PREFIX ?= /usr/local
install: all
	install -D -m 755 $(BUILD)/infd $(DESTDIR)$(PREFIX)/bin/infd
	install -D -m 755 $(BUILD)/infd-run $(DESTDIR)$(PREFIX)/bin/infd-run
	install -D -m 644 config/infd.service $(DESTDIR)/etc/systemd/system/infd.service

# serve the default model repository in the foreground on 127.0.0.1:8000
run: all
	@scripts/run.sh $(BUILD)/infd

asan:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/asan OPT="-O1 -g" \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" unit

FUZZ_CFLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Iruntime -I$(BUILD)/gen
# the loader and what it links against: the graph, tensors and the op table (whose infer
# functions live in rt_op_*.c); no backend, executor or optimizer
FUZZ_SRC := $(addprefix runtime/,rt_onnx.c rt_tensorproto.c rt_path.c rt_pb.c rt_graph.c \
              rt_tensor.c rt_dtype.c rt_status.c rt_ops.c) $(wildcard runtime/rt_op_*.c)
$(BUILD)/fuzz_onnx: tests/fuzz/fuzz_onnx.c $(FUZZ_SRC) $(GEN_SRC)
	clang $(FUZZ_CFLAGS) $^ -lprotobuf-c -lm -o $@

# the request decoder and response encoder of the server (JSON and binary tensor data)
REQ_FUZZ_SRC := server/srv_codec.c server/srv_json_arena.c server/srv_request.c server/srv_buf.c \
                server/srv_types.c runtime/rt_tensor.c runtime/rt_dtype.c runtime/rt_status.c
$(BUILD)/fuzz_request: tests/fuzz/fuzz_request.c $(REQ_FUZZ_SRC)
	clang $(FUZZ_CFLAGS) -Iserver -Iconfig $^ -ljansson -lm -o $@

# FUZZ_TARGET picks the harnesses (onnx, request); each runs for FUZZ_SECONDS
FUZZ_TARGET ?= onnx request
fuzz: deps $(FUZZ_TARGET:%=$(BUILD)/fuzz_%)
	@mkdir -p $(BUILD)/fuzz-corpus $(BUILD)/fuzz-corpus-request
	@for d in /usr/share/libonnx-testdata/data/node/*/; do \
	   cp -n $$d/model.onnx $(BUILD)/fuzz-corpus/$$(basename $$d).onnx; done
	$(if $(filter onnx,$(FUZZ_TARGET)),$(BUILD)/fuzz_onnx -max_total_time=$(FUZZ_SECONDS) \
	    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix=$(BUILD)/ \
	    $(BUILD)/fuzz-corpus)
	$(if $(filter request,$(FUZZ_TARGET)),$(BUILD)/fuzz_request -max_total_time=$(FUZZ_SECONDS) \
	    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix=$(BUILD)/ \
	    -dict=tests/fuzz/request.dict $(BUILD)/fuzz-corpus-request tests/fuzz/corpus_request)

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory $(BUILD)/infd-run
	$(PYTHON) scripts/export_bench_models.py --out $(BUILD)/bench
	$(PYTHON) scripts/bench_cpu.py --runner $(BUILD)/infd-run --models $(BUILD)/bench
	$(PYTHON) scripts/bench_opt.py --runner $(BUILD)/infd-run --models $(BUILD)/bench
	$(PYTHON) scripts/bench_compress.py --runner $(BUILD)/infd-run --models $(BUILD)/bench
	$(PYTHON) scripts/bench_tp.py --runner $(BUILD)/infd-run
	@$(MAKE) --no-print-directory bench-sparse
	@$(MAKE) --no-print-directory bench-http

# the sparse kernel against the dense one: the measurement behind RT_SPARSE_MIN_SPARSITY
$(BUILD)/bench_sparse: tests/bench/bench_sparse.c $(BUILD)/libinfdrt.a
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(BUILD)/libinfdrt.a $(LDFLAGS) $(LDLIBS) -o $@

bench-sparse:
	@$(MAKE) --no-print-directory $(BUILD)/bench_sparse
	$(PYTHON) scripts/bench_sparse.py --bench $(BUILD)/bench_sparse

# the daemon over HTTP: wrk beside nginx, server overhead, batching gain (BENCH_SECONDS per
# wrk round, five alternating rounds per server)
BENCH_SECONDS ?= 2
bench-http:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory $(BUILD)/infd
	$(PYTHON) scripts/bench_http.py --infd $(BUILD)/infd --seconds $(BENCH_SECONDS)

clean:
	rm -rf $(BUILD)

-include $(RT_OBJ:.o=.d) $(PAR_OBJ:.o=.d) $(SRV_OBJ:.o=.d) $(BUILD)/runtime/rt_run_main.d $(UNIT_BIN:=.d) \
         $(BUILD)/bench_sparse.d
-include $(CU_OBJ:.o=.d) $(GPU_TESTS:=.d) $(GPU_BENCH:=.d)
