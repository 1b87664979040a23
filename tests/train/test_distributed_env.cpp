// How a process learns its place in a multi-process run: torchrun's variables, SLURM's, or none.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "c3/train/distributed.h"
#include "c3/util/error.h"
#include "c3/util/runtime.h"
#include "test_support.h"

namespace c3 {
namespace {

using testing::HasSubstr;

// Sets the given variables (and clears every other launcher variable) for one test.
void clear_launcher_env() {
  for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID",
                           "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_JOB_NODELIST", "SLURM_NODELIST"})
    ::unsetenv(name);
}

class LauncherEnv {
 public:
  explicit LauncherEnv(const std::vector<std::pair<const char*, const char*>>& vars) {
    clear_launcher_env();
    for (const auto& [name, value] : vars) ::setenv(name, value, 1);
  }
  ~LauncherEnv() { clear_launcher_env(); }
};

TEST(DistributedEnv, OneProcessNeedsNothing) {
  LauncherEnv env({});
  const auto e = detect_distributed_env();
  EXPECT_FALSE(e.active());
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.source, "none");
}

TEST(DistributedEnv, ReadsTorchrun) {
  LauncherEnv env(
      {{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node7"}, {"MASTER_PORT", "29400"}});
  const auto e = detect_distributed_env();
  EXPECT_TRUE(e.active());
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.master_addr, "node7");
  EXPECT_EQ(e.master_port, 29400);
  EXPECT_EQ(e.source, "torchrun");
}

TEST(DistributedEnv, ReadsSlurmAndFindsTheFirstHost) {
  LauncherEnv env({{"SLURM_PROCID", "5"},
                   {"SLURM_NTASKS", "16"},
                   {"SLURM_LOCALID", "1"},
                   {"SLURM_JOB_NODELIST", "gpu[012-015,20],cpu1"}});
  const auto e = detect_distributed_env();
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.world_size, 16);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.master_addr, "gpu012");
  EXPECT_EQ(e.master_port, 29500);
  EXPECT_EQ(e.source, "slurm");
  EXPECT_EQ(first_slurm_host("node1,node2"), "node1");
  EXPECT_EQ(first_slurm_host("a[7,9]"), "a7");
  EXPECT_EQ(first_slurm_host("rack1-n[3-4]x"), "rack1-n3x");
  EXPECT_EQ(first_slurm_host("solo"), "solo");
}

TEST(DistributedEnv, NonsenseIsAUsageErrorNamingTheVariable) {
  {
    LauncherEnv env({{"RANK", "2"}, {"WORLD_SIZE", "2"}});
    EXPECT_THAT(test::error_of<UsageError>([] { detect_distributed_env(); }), HasSubstr("not below the world size"));
  }
  {
    LauncherEnv env({{"RANK", "x"}, {"WORLD_SIZE", "2"}});
    EXPECT_THAT(test::error_of<UsageError>([] { detect_distributed_env(); }), HasSubstr("RANK=x"));
  }
  {
    LauncherEnv env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}});
    EXPECT_THAT(test::error_of<UsageError>([] { detect_distributed_env(); }), HasSubstr("SLURM_JOB_NODELIST"));
  }
  {
    LauncherEnv env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}});
    EXPECT_THAT(test::error_of<UsageError>([] { detect_distributed_env(); }), HasSubstr("MASTER_PORT"));
  }
}

TEST(DistributedEnv, OneSlurmTaskIsOneProcess) {
  LauncherEnv env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}});
  EXPECT_FALSE(detect_distributed_env().active());
}

TEST(DistributedEnv, OneTorchrunRankStillGetsAProcessGroup) {
  LauncherEnv env({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"LOCAL_RANK", "0"}});
  const auto e = detect_distributed_env();
  EXPECT_TRUE(e.active());
  EXPECT_EQ(e.world_size, 1);
}

// Every process started on a node (torchrun, SLURM) runs on its own GPU, compress and reconstruct
// as well as train; on the CPU the local rank changes nothing.
TEST(DistributedEnv, EachLocalRankGetsItsOwnGpu) {
  EXPECT_EQ(cuda_device_for_local_rank(0, 1), c10::Device(c10::kCUDA, 0));
  EXPECT_EQ(cuda_device_for_local_rank(3, 8), c10::Device(c10::kCUDA, 3));
  try {
    cuda_device_for_local_rank(2, 2);
    ADD_FAILURE() << "a third process on two GPUs";
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("local rank 2 has no GPU of its own: this node has 2"));
  }
  LauncherEnv env({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"}});
  EXPECT_EQ(resolve_device("cpu"), c10::Device(c10::kCPU));
  if (!cuda_available()) EXPECT_EQ(resolve_device("auto"), c10::Device(c10::kCPU));
}

// NCCL's waits block and throw on a timeout (the one-line error Gloo gives) unless the user chose
// otherwise.
TEST(DistributedEnv, NcclWaitsBlockUnlessTheUserSaidOtherwise) {
  ::unsetenv("TORCH_NCCL_BLOCKING_WAIT");
  set_nccl_environment();
  ASSERT_NE(std::getenv("TORCH_NCCL_BLOCKING_WAIT"), nullptr);
  EXPECT_STREQ(std::getenv("TORCH_NCCL_BLOCKING_WAIT"), "1");
  ::setenv("TORCH_NCCL_BLOCKING_WAIT", "0", 1);
  set_nccl_environment();
  EXPECT_STREQ(std::getenv("TORCH_NCCL_BLOCKING_WAIT"), "0") << "the user's setting stays";
  ::unsetenv("TORCH_NCCL_BLOCKING_WAIT");
}

}  // namespace
}  // namespace c3
