#pragma once
// Base64 (RFC 4648, standard alphabet): etcd's gateway bytes, kubeconfig -data fields.

#include <string>
#include <string_view>

#include "core/result.h"

namespace ep::os {

std::string base64_encode(std::string_view bytes);
// Standard alphabet; padding optional; whitespace not allowed. Errors name the problem.
Result<std::string> base64_decode(std::string_view text);

}  // namespace ep::os
