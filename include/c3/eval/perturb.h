// The paper's seed experiments as controls: the same pages with their words shuffled, or with
// each word replaced by random characters of the same length. A model that copies "like a zipper"
// reconstructs these as well as real text; one that reconstructs by meaning does worse.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace c3 {

enum class Perturbation { kNone, kShuffleWords, kRandomChars };

// "none", "shuffle-words", "random-chars"; anything else is a UsageError naming the choices.
Perturbation parse_perturbation(const std::string& name);
std::string perturbation_name(Perturbation p);

// Deterministic in (text, seed). Whitespace (Python's) stays where it was: shuffling permutes the
// words among the word slots; random characters replace each non-space character by one of
// [a-zA-Z0-9].
std::string perturb(const std::string& text, Perturbation p, uint64_t seed);

}  // namespace c3
