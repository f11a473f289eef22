#include "support/aws/aws_double.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>
#include <thread>

#include "discovery/aws/sigv4.h"

namespace ep::test {

namespace {

using Clock = std::chrono::system_clock;
constexpr std::string_view kAsNs = "http://autoscaling.amazonaws.com/doc/2011-01-01/";
constexpr std::string_view kEc2Ns = "http://ec2.amazonaws.com/doc/2016-11-15/";
constexpr std::string_view kStsNs = "https://sts.amazonaws.com/doc/2011-06-15/";

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_form(std::string_view body) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0;
  while (pos <= body.size() && !body.empty()) {
    size_t amp = body.find('&', pos);
    if (amp == std::string_view::npos) amp = body.size();
    std::string_view part = body.substr(pos, amp - pos);
    if (!part.empty()) {
      auto eq = part.find('=');
      std::string k(part.substr(0, eq));
      std::string v = eq == std::string_view::npos ? "" : std::string(part.substr(eq + 1));
      std::replace(k.begin(), k.end(), '+', ' ');
      std::replace(v.begin(), v.end(), '+', ' ');
      out.emplace_back(aws::uri_decode(k), aws::uri_decode(v));
    }
    pos = amp + 1;
  }
  return out;
}

std::string form_get(const std::vector<std::pair<std::string, std::string>>& f,
                     const std::string& name) {
  for (const auto& [k, v] : f) {
    if (k == name) return v;
  }
  return {};
}

std::string http_date(Clock::time_point t) {
  std::time_t tt = Clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::optional<Clock::time_point> parse_amz_date(const std::string& s) {
  std::tm tm{};
  if (s.size() != 16 || !strptime(s.c_str(), "%Y%m%dT%H%M%SZ", &tm)) return std::nullopt;
  return Clock::from_time_t(timegm(&tm));
}

std::string iso(Clock::time_point t) {
  std::time_t tt = Clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

enum class Proto { kQuery, kEc2, kJson };

}  // namespace

struct AwsDouble::Impl {
  struct Key {
    std::string secret, token;
  };
  struct Message {
    std::string id, body, receipt;
    Clock::time_point visible_at{};
    int receive_count = 0;
    Clock::time_point sent{};
  };
  struct InjectedFault {
    Fault fault;
    int count;
    std::string action;
  };

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::map<std::string, Key> keys;
  std::chrono::seconds offset{0};
  std::map<std::string, DoubleInstance> instances;  // by id (sorted)
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> group_tags;
  struct PendingAction {
    std::string group, hook, instance_id, token, transition;
  };
  std::vector<PendingAction> actions;
  int ec2_page_size = 1000;
  std::map<std::string, std::deque<Message>> queues;
  std::string web_identity_token;
  std::string imds_role, imds_json;
  std::string container_auth, container_json;
  std::vector<std::string> imds_tokens;
  std::string imds_region = "eu-west-1";
  std::vector<std::string> imds_log;
  std::set<std::string> iam_actions;  // "service:Action" of signed requests accepted
  std::vector<std::pair<std::string, std::vector<std::string>>>
      last_filters;                       // "PUT /latest/api/token", "GET /latest/meta-data/…"
  std::set<std::string> signing_regions;  // credential scope regions of accepted requests
  std::deque<InjectedFault> faults;
  std::map<std::string, int> calls;
  int signature_failures = 0;
  std::vector<DoubleLifecycleCall> lifecycle;
  std::vector<std::string> last_ids;
  uint64_t serial = 0;

  Clock::time_point now() const { return Clock::now() + offset; }

  static HttpServerReply error(Proto proto, int status, const std::string& code,
                               const std::string& message, std::string_view ns = kAsNs) {
    HttpServerReply r;
    r.status = status;
    if (proto == Proto::kJson) {
      r.headers.emplace_back("Content-Type", "application/x-amz-json-1.0");
      r.headers.emplace_back("x-amzn-query-error", code + ";Sender");
      r.body = nlohmann::json{{"__type", "com.amazonaws.sqs#" + code}, {"message", message}}.dump();
    } else if (proto == Proto::kEc2) {
      r.headers.emplace_back("Content-Type", "text/xml;charset=UTF-8");
      r.body = fmt::format(
          "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code>"
          "<Message>{}</Message></Error></Errors><RequestID>req-err</RequestID></Response>",
          xml_escape(code), xml_escape(message));
    } else {
      r.headers.emplace_back("Content-Type", "text/xml");
      r.body = fmt::format(
          "<ErrorResponse xmlns=\"{}\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>{}</Code>\n"
          "    <Message>{}</Message>\n  </Error>\n  <RequestId>req-err</RequestId>\n"
          "</ErrorResponse>\n",
          ns, xml_escape(code), xml_escape(message));
    }
    return r;
  }

  // Returns an error reply when the signature is missing or wrong.
  std::optional<HttpServerReply> verify(const HttpServerRequest& req, Proto proto,
                                        std::string_view service, std::string_view ns) {
    const std::string auth = req.header("authorization");
    const std::string prefix = "AWS4-HMAC-SHA256 ";
    auto fail = [&](int status, const std::string& code, const std::string& msg) {
      ++signature_failures;
      return std::optional<HttpServerReply>(error(proto, status, code, msg, ns));
    };
    if (auth.rfind(prefix, 0) != 0) {
      return fail(403, proto == Proto::kJson ? "MissingAuthenticationToken" : "IncompleteSignature",
                  "Request is missing Authentication Token");
    }
    auto field = [&](const std::string& name) -> std::string {
      auto p = auth.find(name + "=");
      if (p == std::string::npos) return {};
      p += name.size() + 1;
      auto e = auth.find(',', p);
      return auth.substr(p, e == std::string::npos ? std::string::npos : e - p);
    };
    const std::string credential = field("Credential");
    const std::string signed_headers = field("SignedHeaders");
    const std::string signature = field("Signature");
    std::vector<std::string> scope;
    for (size_t p = 0;;) {
      auto s = credential.find('/', p);
      scope.push_back(credential.substr(p, s == std::string::npos ? std::string::npos : s - p));
      if (s == std::string::npos) break;
      p = s + 1;
    }
    if (scope.size() != 5 || signed_headers.empty() || signature.empty() ||
        scope[4] != "aws4_request") {
      return fail(400, "IncompleteSignature", "Authorization header is malformed");
    }
    auto key = keys.find(scope[0]);
    if (key == keys.end()) {
      return fail(403, proto == Proto::kJson ? "InvalidClientTokenId" : "InvalidClientTokenId",
                  "The security token included in the request is invalid.");
    }
    const std::string token = req.header("x-amz-security-token");
    if (token != key->second.token) {
      return fail(403, "InvalidClientTokenId",
                  "The security token included in the request is invalid.");
    }
    if (scope[3] != service) {
      return fail(403, "SignatureDoesNotMatch",
                  fmt::format("Credential should be scoped to correct service: '{}'.", service));
    }
    const auto when = parse_amz_date(req.header("x-amz-date"));
    if (!when) return fail(400, "IncompleteSignature", "X-Amz-Date is missing or malformed");
    if (*when < now() - std::chrono::minutes(15) || *when > now() + std::chrono::minutes(15)) {
      auto r = error(proto, 403, "RequestTimeTooSkewed",
                     "The difference between the request time and the current time is too large.",
                     ns);
      r.headers.emplace_back("Date", http_date(now()));
      ++signature_failures;
      return r;
    }
    aws::SignableRequest s;
    s.method = req.method;
    const auto q = req.target.find('?');
    s.path = req.target.substr(0, q);
    if (q != std::string::npos) s.query = req.target.substr(q + 1);
    bool token_signed = false;
    for (size_t p = 0;;) {
      auto e = signed_headers.find(';', p);
      std::string name = signed_headers.substr(p, e == std::string::npos ? std::string::npos : e - p);
      if (name == "x-amz-security-token") {
        token_signed = true;
      } else if (name != "x-amz-date") {
        s.headers.push_back({name, req.header(name)});
      }
      if (e == std::string::npos) break;
      p = e + 1;
    }
    s.body = req.body;
    aws::SigningConfig config;
    config.region = scope[2];
    config.service = scope[3];
    signing_regions.insert(scope[2]);
    config.time = *when;
    config.sign_session_token = token_signed;
    aws::Credentials c{scope[0], key->second.secret, token, std::nullopt, "double"};
    auto expected = aws::sign_request(s, c, config);
    if (!expected || expected->signature != signature ||
        expected->signed_headers != signed_headers) {
      return fail(403, "SignatureDoesNotMatch",
                  "The request signature we calculated does not match the signature you provided. "
                  "Check your AWS Secret Access Key and signing method.");
    }
    return std::nullopt;
  }

  std::optional<HttpServerReply> take_fault(const std::string& action, Proto proto,
                                            std::string_view ns) {
    for (auto it = faults.begin(); it != faults.end(); ++it) {
      if (!it->action.empty() && it->action != action) continue;
      const Fault f = it->fault;
      if (--it->count <= 0) faults.erase(it);
      switch (f) {
        case Fault::kThrottle:
          return error(proto, 400,
                       proto == Proto::kEc2    ? "RequestLimitExceeded"
                       : proto == Proto::kJson ? "RequestThrottled"
                                               : "Throttling",
                       "Rate exceeded", ns);
        case Fault::kInternalError:
          return error(proto, 500, proto == Proto::kJson ? "InternalError" : "InternalFailure",
                       "We encountered an internal error. Please try again.", ns);
        case Fault::kGarbage503: {
          HttpServerReply r;
          r.status = 503;
          r.body = "<html><body>Service Unavailable";
          return r;
        }
        case Fault::kExpiredToken:
          return error(proto, 403, "ExpiredToken",
                       "The security token included in the request is expired", ns);
      }
    }
    return std::nullopt;
  }

  HttpServerReply ok_xml(std::string body) {
    HttpServerReply r;
    r.headers.emplace_back("Content-Type", "text/xml;charset=UTF-8");
    r.body = std::move(body);
    return r;
  }

  std::string issue_temporary_key(Clock::time_point expiry, std::string* secret,
                                  std::string* token) {
    ++serial;
    const std::string id = fmt::format("ASIADOUBLE{:010}", serial);
    *secret = fmt::format("double-secret-{}", serial);
    *token = fmt::format("double-token-{}", serial);
    keys[id] = {*secret, *token};
    (void)expiry;
    return id;
  }

  HttpServerReply sts(const std::string& action,
                      const std::vector<std::pair<std::string, std::string>>& form) {
    std::string secret, token;
    const auto expiry = now() + std::chrono::hours(1);
    const std::string id = issue_temporary_key(expiry, &secret, &token);
    return ok_xml(fmt::format(
        "<{0}Response xmlns=\"{1}\">\n  <{0}Result>\n    <AssumedRoleUser><Arn>{2}/session</Arn>"
        "<AssumedRoleId>AROADOUBLE:session</AssumedRoleId></AssumedRoleUser>\n    <Credentials>\n"
        "      <AccessKeyId>{3}</AccessKeyId>\n      <SecretAccessKey>{4}</SecretAccessKey>\n"
        "      <SessionToken>{5}</SessionToken>\n      <Expiration>{6}</Expiration>\n"
        "    </Credentials>\n  </{0}Result>\n  <ResponseMetadata><RequestId>req-sts</RequestId>"
        "</ResponseMetadata>\n</{0}Response>\n",
        action, kStsNs, xml_escape(form_get(form, "RoleArn")), id, secret, token, iso(expiry)));
  }

  HttpServerReply describe_asgs(const std::vector<std::pair<std::string, std::string>>& form) {
    std::vector<std::string> names;
    for (const auto& [k, v] : form) {
      if (k.rfind("AutoScalingGroupNames.member.", 0) == 0) names.push_back(v);
    }
    if (names.size() > 50) {
      return error(Proto::kQuery, 400, "ValidationError",
                   "The number of AutoScalingGroupNames exceeds the limit of 50.");
    }
    int max_records = 50;
    if (auto m = form_get(form, "MaxRecords"); !m.empty()) max_records = std::stoi(m);
    if (max_records < 1 || max_records > 100) {
      return error(Proto::kQuery, 400, "ValidationError", "MaxRecords must be between 1 and 100");
    }
    // Filters.member.N.Name / Filters.member.N.Values.member.M: values ORed, filters ANDed.
    std::map<int, std::pair<std::string, std::vector<std::string>>> filters;
    for (const auto& [k, v] : form) {
      if (k.rfind("Filters.member.", 0) != 0) continue;
      const std::string rest = k.substr(15);
      const auto dot = rest.find('.');
      if (dot == std::string::npos) continue;
      const int n = std::atoi(rest.substr(0, dot).c_str());
      const std::string field = rest.substr(dot + 1);
      if (field == "Name") {
        filters[n].first = v;
      } else if (field.rfind("Values.member.", 0) == 0) {
        filters[n].second.push_back(v);
      }
    }
    for (const auto& [n, f] : filters) {
      const auto& name = f.first;
      if (name != "tag-key" && name != "tag-value" && name != "auto-scaling-group" &&
          name.rfind("tag:", 0) != 0) {
        return error(Proto::kQuery, 400, "ValidationError",
                     "Filter name '" + name + "' is invalid.");
      }
    }
    auto passes = [&](const std::string& g) {
      const auto& tags = group_tags[g];
      for (const auto& [n, f] : filters) {
        const auto& [name, values] = f;
        bool any = false;
        for (const auto& want : values) {
          if (name == "auto-scaling-group") any = any || g == want;
          for (const auto& [tk, tv] : tags) {
            if (name == "tag-key") any = any || tk == want;
            if (name == "tag-value") any = any || tv == want;
            if (name.rfind("tag:", 0) == 0) any = any || (tk == name.substr(4) && tv == want);
          }
        }
        if (!any) return false;
      }
      return true;
    };
    std::vector<std::string> selected;
    for (const auto& g : groups) {
      if ((names.empty() || std::find(names.begin(), names.end(), g) != names.end()) &&
          passes(g)) {
        selected.push_back(g);
      }
    }
    size_t offset = 0;
    if (auto t = form_get(form, "NextToken"); !t.empty()) {
      if (t.rfind("asg-token-", 0) != 0) {
        return error(Proto::kQuery, 400, "InvalidNextToken", "The token '" + t + "' is invalid.");
      }
      offset = std::stoul(t.substr(10));
    }
    std::string members;
    const size_t end = std::min(selected.size(), offset + static_cast<size_t>(max_records));
    for (size_t i = offset; i < end; ++i) {
      std::string inst;
      for (const auto& [id, in] : instances) {
        if (in.group != selected[i]) continue;
        inst += fmt::format(
            "          <member>\n            <InstanceId>{}</InstanceId>\n"
            "            <InstanceType>m5.large</InstanceType>\n"
            "            <AvailabilityZone>{}</AvailabilityZone>\n"
            "            <LifecycleState>{}</LifecycleState>\n"
            "            <HealthStatus>{}</HealthStatus>\n"
            "            <ProtectedFromScaleIn>false</ProtectedFromScaleIn>\n{}"
            "          </member>\n",
            id, in.availability_zone, in.lifecycle_state, in.health_status,
            in.weighted_capacity.empty()
                ? std::string()
                : fmt::format("            <WeightedCapacity>{}</WeightedCapacity>\n",
                              in.weighted_capacity));
      }
      members += fmt::format(
          "      <member>\n        <AutoScalingGroupName>{0}</AutoScalingGroupName>\n"
          "        <AutoScalingGroupARN>arn:aws:autoscaling:eu-west-1:111122223333:"
          "autoScalingGroup:0000:autoScalingGroupName/{0}</AutoScalingGroupARN>\n"
          "        <MinSize>0</MinSize>\n        <MaxSize>1000</MaxSize>\n"
          "        <DesiredCapacity>1</DesiredCapacity>\n"
          "        <AvailabilityZones>\n          <member>eu-west-1a</member>\n"
          "        </AvailabilityZones>\n        <HealthCheckType>EC2</HealthCheckType>\n"
          "        <Instances>\n{1}        </Instances>\n        <Tags>\n{2}        </Tags>\n"
          "      </member>\n",
          xml_escape(selected[i]), inst, [&] {
            std::string t;
            for (const auto& [k, v] : group_tags[selected[i]]) {
              t += fmt::format(
                  "          <member><ResourceId>{0}</ResourceId><ResourceType>auto-scaling-group"
                  "</ResourceType><Key>{1}</Key><Value>{2}</Value><PropagateAtLaunch>true"
                  "</PropagateAtLaunch></member>\n",
                  xml_escape(selected[i]), xml_escape(k), xml_escape(v));
            }
            return t;
          }());
    }
    const std::string next =
        end < selected.size() ? fmt::format("    <NextToken>asg-token-{}</NextToken>\n", end) : "";
    return ok_xml(fmt::format(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeAutoScalingGroupsResponse "
        "xmlns=\"{}\">\n  <DescribeAutoScalingGroupsResult>\n    <AutoScalingGroups>\n{}"
        "    </AutoScalingGroups>\n{}  </DescribeAutoScalingGroupsResult>\n  <ResponseMetadata>\n"
        "    <RequestId>req-asg</RequestId>\n  </ResponseMetadata>\n"
        "</DescribeAutoScalingGroupsResponse>\n",
        kAsNs, members, next));
  }

  static std::string state_name(int code) {
    switch (code & 0xff) {
      case 0:
        return "pending";
      case 16:
        return "running";
      case 32:
        return "shutting-down";
      case 48:
        return "terminated";
      case 64:
        return "stopping";
      case 80:
        return "stopped";
    }
    return "pending";
  }

  HttpServerReply describe_instances(const std::vector<std::pair<std::string, std::string>>& form) {
    std::vector<std::string> ids;
    for (const auto& [k, v] : form) {
      if (k.rfind("InstanceId.", 0) == 0) ids.push_back(v);
    }
    if (ids.size() > 1000) {
      return error(Proto::kEc2, 400, "InvalidParameterValue",
                   "The maximum number of instance IDs is 1000", kEc2Ns);
    }
    last_ids = ids;
    std::vector<const DoubleInstance*> selected;
    for (const auto& id : ids) {
      auto it = instances.find(id);
      if (it == instances.end()) {
        return error(Proto::kEc2, 400, "InvalidInstanceID.NotFound",
                     fmt::format("The instance ID '{}' does not exist", id), kEc2Ns);
      }
      selected.push_back(&it->second);
    }
    // Filters (EC2 protocol: Filter.N.Name, Filter.N.Value.M): filters ANDed, values ORed.
    std::map<int, std::pair<std::string, std::vector<std::string>>> filters;
    for (const auto& [k, v] : form) {
      if (k.rfind("Filter.", 0) != 0) continue;
      const auto dot = k.find('.', 7);
      if (dot == std::string::npos) continue;
      const int n = std::atoi(k.substr(7, dot - 7).c_str());
      const std::string rest = k.substr(dot + 1);
      if (rest == "Name") {
        filters[n].first = v;
      } else if (rest.rfind("Value.", 0) == 0) {
        filters[n].second.push_back(v);
      }
    }
    for (const auto& [n, f] : filters) {
      const bool known = f.first.rfind("tag:", 0) == 0 || f.first == "tag-key" ||
                         f.first == "instance-state-name" || f.first == "availability-zone";
      if (!known || f.second.empty()) {
        return error(Proto::kEc2, 400, "InvalidParameterValue",
                     fmt::format("The filter '{}' is invalid", f.first), kEc2Ns);
      }
    }
    last_filters.clear();
    for (const auto& [n, f] : filters) last_filters.push_back(f);
    auto matches = [&](const DoubleInstance& in) {
      for (const auto& [n, f] : filters) {
        const auto& [name, values] = f;
        bool any = false;
        for (const auto& want : values) {
          if (name == "instance-state-name") {
            any = any || state_name(in.state_code) == want;
          } else if (name == "availability-zone") {
            any = any || in.availability_zone == want;
          } else {
            for (const auto& [tk, tv] : in.tags) {
              any = any || (name == "tag-key" ? tk == want : ("tag:" + tk == name && tv == want));
            }
          }
        }
        if (!any) return false;
      }
      return true;
    };
    int page_size = ec2_page_size;
    if (auto m = form_get(form, "MaxResults"); !m.empty()) {
      if (!ids.empty()) {
        return error(Proto::kEc2, 400, "InvalidParameterCombination",
                     "The parameter instancesSet cannot be used with the parameter maxResults",
                     kEc2Ns);
      }
      const int max = std::atoi(m.c_str());
      if (max < 5 || max > 1000) {
        return error(Proto::kEc2, 400, "InvalidParameterValue",
                     "Value for parameter maxResults is invalid. Expecting a value between 5 "
                     "and 1000",
                     kEc2Ns);
      }
      page_size = std::min(page_size, max);
    }
    if (ids.empty()) {
      for (const auto& [id, in] : instances) {
        if (matches(in)) selected.push_back(&in);
      }
    }
    size_t offset = 0;
    if (auto t = form_get(form, "NextToken"); !t.empty()) {
      if (t.rfind("ec2-token-", 0) != 0) {
        return error(Proto::kEc2, 400, "InvalidParameterValue", "Invalid NextToken", kEc2Ns);
      }
      offset = std::stoul(t.substr(10));
    }
    const size_t end = std::min(selected.size(), offset + static_cast<size_t>(page_size));
    std::string items;
    for (size_t i = offset; i < end; ++i) {
      const auto& in = *selected[i];
      std::string tags;
      for (const auto& [k, v] : in.tags) {
        tags += fmt::format("<item><key>{}</key><value>{}</value></item>", xml_escape(k),
                            xml_escape(v));
      }
      std::string v6;
      for (const auto& a : in.ipv6) v6 += fmt::format("<item><ipv6Address>{}</ipv6Address></item>", a);
      items += fmt::format(
          "<item><reservationId>r-{0}</reservationId><ownerId>111122223333</ownerId>"
          "<instancesSet><item><instanceId>{0}</instanceId><instanceType>m5.large</instanceType>"
          "<instanceState><code>{1}</code><name>{2}</name></instanceState>"
          "<placement><availabilityZone>{3}</availabilityZone></placement>"
          "<subnetId>subnet-1</subnetId><vpcId>vpc-1</vpcId>{4}{5}"
          "<networkInterfaceSet><item><networkInterfaceId>eni-{0}</networkInterfaceId>"
          "<ipv6AddressesSet>{6}</ipv6AddressesSet></item></networkInterfaceSet>"
          "<tagSet>{7}</tagSet></item></instancesSet></item>\n",
          in.id, in.state_code, state_name(in.state_code), in.availability_zone,
          in.private_ip.empty()
              ? ""
              : fmt::format("<privateIpAddress>{}</privateIpAddress>", in.private_ip),
          in.public_ip.empty() ? "" : fmt::format("<ipAddress>{}</ipAddress>", in.public_ip), v6,
          tags);
    }
    const std::string next =
        end < selected.size() ? fmt::format("<nextToken>ec2-token-{}</nextToken>", end) : "";
    return ok_xml(fmt::format(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeInstancesResponse xmlns=\"{}\">"
        "<requestId>req-ec2</requestId><reservationSet>\n{}</reservationSet>{}"
        "</DescribeInstancesResponse>\n",
        kEc2Ns, items, next));
  }

  HttpServerReply lifecycle_call(const std::string& action,
                                 const std::vector<std::pair<std::string, std::string>>& form) {
    DoubleLifecycleCall c{action,
                          form_get(form, "AutoScalingGroupName"),
                          form_get(form, "LifecycleHookName"),
                          form_get(form, "LifecycleActionToken"),
                          form_get(form, "InstanceId"),
                          form_get(form, "LifecycleActionResult"),
                          false,
                          std::chrono::steady_clock::now()};
    if (c.group.empty() || c.hook.empty() || (c.token.empty() && c.instance_id.empty())) {
      lifecycle.push_back(c);
      return error(Proto::kQuery, 400, "ValidationError",
                   "LifecycleHookName, AutoScalingGroupName and LifecycleActionToken or "
                   "InstanceId are required");
    }
    if (action == "CompleteLifecycleAction" && c.result != "CONTINUE" && c.result != "ABANDON") {
      lifecycle.push_back(c);
      return error(Proto::kQuery, 400, "ValidationError",
                   "LifecycleActionResult must be CONTINUE or ABANDON");
    }
    auto it = std::find_if(actions.begin(), actions.end(), [&](const PendingAction& a) {
      return a.group == c.group && a.hook == c.hook &&
             (c.token.empty() ? a.instance_id == c.instance_id : a.token == c.token);
    });
    if (it == actions.end()) {
      lifecycle.push_back(c);
      return error(Proto::kQuery, 400, "ValidationError",
                   fmt::format("No active Lifecycle Action found with {} {}",
                               c.token.empty() ? "instance ID" : "token",
                               c.token.empty() ? c.instance_id : c.token));
    }
    c.accepted = true;
    lifecycle.push_back(c);
    if (action == "CompleteLifecycleAction") {
      const PendingAction a = *it;
      actions.erase(it);
      const bool more = std::any_of(actions.begin(), actions.end(), [&](const PendingAction& o) {
        return o.instance_id == a.instance_id;
      });
      if (!more) {  // the ASG waits for every hook of the transition
        auto inst = instances.find(a.instance_id);
        if (inst != instances.end()) {
          if (a.transition == "autoscaling:EC2_INSTANCE_LAUNCHING" && c.result == "CONTINUE") {
            inst->second.lifecycle_state = "InService";
          } else {
            instances.erase(inst);
          }
        }
      }
    }
    return ok_xml(fmt::format(
        "<{0}Response xmlns=\"{1}\">\n  <{0}Result/>\n  <ResponseMetadata>"
        "<RequestId>req-lc</RequestId></ResponseMetadata>\n</{0}Response>\n",
        action, kAsNs));
  }

  HttpServerReply sqs(const std::string& op, const std::string& body,
                      std::unique_lock<std::mutex>& lock) {
    nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("QueueUrl") ||
        !j["QueueUrl"].is_string()) {
      return error(Proto::kJson, 400, "InvalidParameterValue", "QueueUrl is required");
    }
    const std::string url = j["QueueUrl"];
    auto q = queues.find(url);
    if (q == queues.end()) {
      return error(Proto::kJson, 400, "QueueDoesNotExist",
                   "The specified queue does not exist.");
    }
    HttpServerReply r;
    r.headers.emplace_back("Content-Type", "application/x-amz-json-1.0");
    if (op == "ReceiveMessage") {
      const int max = j.value("MaxNumberOfMessages", 1);
      const int wait = j.value("WaitTimeSeconds", 0);
      const int vis = j.value("VisibilityTimeout", 30);
      if (max < 1 || max > 10 || wait < 0 || wait > 20) {
        return error(Proto::kJson, 400, "InvalidParameterValue", "out of range");
      }
      const auto deadline = Clock::now() + std::chrono::seconds(wait);
      nlohmann::json msgs = nlohmann::json::array();
      for (;;) {
        const auto t = Clock::now();
        for (auto& m : queues[url]) {
          if (static_cast<int>(msgs.size()) >= max) break;
          if (m.visible_at > t) continue;
          ++m.receive_count;
          m.receipt = fmt::format("rh-{}-{}", m.id, ++serial);
          m.visible_at = t + std::chrono::seconds(vis);
          msgs.push_back({{"MessageId", m.id},
                          {"ReceiptHandle", m.receipt},
                          {"MD5OfBody", aws::sha256_hex(m.body).substr(0, 32)},
                          {"Body", m.body},
                          {"Attributes",
                           {{"ApproximateReceiveCount", std::to_string(m.receive_count)},
                            {"SentTimestamp",
                             std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                m.sent.time_since_epoch())
                                                .count())}}}});
        }
        if (!msgs.empty() || stopping || Clock::now() >= deadline) break;
        // Wake early when a message becomes visible again.
        auto wake = deadline;
        for (const auto& m : queues[url]) wake = std::min(wake, std::max(m.visible_at, t));
        cv.wait_until(lock, std::max(wake, t + std::chrono::milliseconds(5)));
      }
      nlohmann::json out = nlohmann::json::object();
      if (!msgs.empty()) out["Messages"] = msgs;
      r.body = out.dump();
      return r;
    }
    const std::string receipt = j.value("ReceiptHandle", "");
    auto& msgs = q->second;
    auto it = std::find_if(msgs.begin(), msgs.end(),
                           [&](const Message& m) { return m.receipt == receipt && !receipt.empty(); });
    if (it == msgs.end()) {
      return error(Proto::kJson, 400, "ReceiptHandleIsInvalid",
                   "The input receipt handle is invalid.");
    }
    if (op == "DeleteMessage") {
      msgs.erase(it);
    } else if (op == "ChangeMessageVisibility") {
      it->visible_at = Clock::now() + std::chrono::seconds(j.value("VisibilityTimeout", 0));
      cv.notify_all();
    } else {
      return error(Proto::kJson, 400, "InvalidAction", "unsupported operation " + op);
    }
    r.body = "{}";
    return r;
  }
};

AwsDouble::AwsDouble()
    : impl_(std::make_unique<Impl>()),
      server_([this](const HttpServerRequest& r) { return handle(r); }) {}

AwsDouble::~AwsDouble() { stop(); }

void AwsDouble::start() { server_.start(); }

void AwsDouble::stop() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  server_.stop();
}

void AwsDouble::add_key(const std::string& key_id, const std::string& secret,
                        const std::string& session_token) {
  std::lock_guard lock(impl_->mu);
  impl_->keys[key_id] = {secret, session_token};
}

void AwsDouble::set_clock_offset(std::chrono::seconds offset) {
  std::lock_guard lock(impl_->mu);
  impl_->offset = offset;
}

void AwsDouble::put_instance(const DoubleInstance& instance) {
  std::lock_guard lock(impl_->mu);
  impl_->instances[instance.id] = instance;
  if (!instance.group.empty() &&
      std::find(impl_->groups.begin(), impl_->groups.end(), instance.group) ==
          impl_->groups.end()) {
    impl_->groups.push_back(instance.group);
  }
}

void AwsDouble::remove_instance(const std::string& id) {
  std::lock_guard lock(impl_->mu);
  impl_->instances.erase(id);
}

void AwsDouble::add_group(const std::string& name,
                          std::vector<std::pair<std::string, std::string>> tags) {
  std::lock_guard lock(impl_->mu);
  if (std::find(impl_->groups.begin(), impl_->groups.end(), name) == impl_->groups.end()) {
    impl_->groups.push_back(name);
  }
  impl_->group_tags[name] = std::move(tags);
}

void AwsDouble::add_lifecycle_action(const std::string& group, const std::string& hook,
                                     const std::string& instance_id, const std::string& token,
                                     const std::string& transition) {
  std::lock_guard lock(impl_->mu);
  impl_->actions.push_back({group, hook, instance_id, token, transition});
}

int AwsDouble::pending_lifecycle_actions() {
  std::lock_guard lock(impl_->mu);
  return static_cast<int>(impl_->actions.size());
}

void AwsDouble::set_ec2_page_size(int n) {
  std::lock_guard lock(impl_->mu);
  impl_->ec2_page_size = n;
}

std::string AwsDouble::create_queue(const std::string& name) {
  std::lock_guard lock(impl_->mu);
  const std::string url = server_.base_url() + "/111122223333/" + name;
  impl_->queues[url];
  return url;
}

void AwsDouble::send_message(const std::string& queue_url, const std::string& body) {
  {
    std::lock_guard lock(impl_->mu);
    Impl::Message m;
    m.id = fmt::format("msg-{}", ++impl_->serial);
    m.body = body;
    m.sent = Clock::now();
    impl_->queues[queue_url].push_back(std::move(m));
  }
  impl_->cv.notify_all();
}

size_t AwsDouble::queue_size(const std::string& queue_url) {
  std::lock_guard lock(impl_->mu);
  return impl_->queues[queue_url].size();
}

void AwsDouble::set_web_identity_token(const std::string& token) {
  std::lock_guard lock(impl_->mu);
  impl_->web_identity_token = token;
}

void AwsDouble::set_imds_role(const std::string& role, const std::string& key_id,
                              const std::string& secret, const std::string& token,
                              const std::string& expiration) {
  std::lock_guard lock(impl_->mu);
  impl_->imds_role = role;
  impl_->keys[key_id] = {secret, token};
  impl_->imds_json = nlohmann::json{{"Code", "Success"},
                                    {"LastUpdated", "2026-01-01T00:00:00Z"},
                                    {"Type", "AWS-HMAC"},
                                    {"AccessKeyId", key_id},
                                    {"SecretAccessKey", secret},
                                    {"Token", token},
                                    {"Expiration", expiration}}
                         .dump();
}

void AwsDouble::set_container_credentials(const std::string& auth_token, const std::string& key_id,
                                          const std::string& secret, const std::string& token,
                                          const std::string& expiration) {
  std::lock_guard lock(impl_->mu);
  impl_->container_auth = auth_token;
  impl_->keys[key_id] = {secret, token};
  impl_->container_json = nlohmann::json{{"AccessKeyId", key_id},
                                         {"SecretAccessKey", secret},
                                         {"Token", token},
                                         {"Expiration", expiration}}
                              .dump();
}

void AwsDouble::set_imds_region(const std::string& region) {
  std::lock_guard lock(impl_->mu);
  impl_->imds_region = region;
}

std::vector<std::pair<std::string, std::vector<std::string>>> AwsDouble::last_filters() {
  std::lock_guard lock(impl_->mu);
  return impl_->last_filters;
}

std::set<std::string> AwsDouble::iam_actions() {
  std::lock_guard lock(impl_->mu);
  return impl_->iam_actions;
}

std::vector<std::string> AwsDouble::imds_requests() {
  std::lock_guard lock(impl_->mu);
  return impl_->imds_log;
}

std::set<std::string> AwsDouble::signing_regions() {
  std::lock_guard lock(impl_->mu);
  return impl_->signing_regions;
}

void AwsDouble::revoke_imds_tokens() {
  std::lock_guard lock(impl_->mu);
  impl_->imds_tokens.clear();
}

void AwsDouble::inject(Fault fault, int count, const std::string& action) {
  std::lock_guard lock(impl_->mu);
  impl_->faults.push_back({fault, count, action});
}

int AwsDouble::calls(const std::string& action) {
  std::lock_guard lock(impl_->mu);
  return impl_->calls[action];
}

int AwsDouble::signature_failures() {
  std::lock_guard lock(impl_->mu);
  return impl_->signature_failures;
}

std::vector<DoubleLifecycleCall> AwsDouble::lifecycle_calls() {
  std::lock_guard lock(impl_->mu);
  return impl_->lifecycle;
}

std::vector<std::string> AwsDouble::last_describe_instances_ids() {
  std::lock_guard lock(impl_->mu);
  return impl_->last_ids;
}

HttpServerReply AwsDouble::handle(const HttpServerRequest& req) {
  std::unique_lock lock(impl_->mu);
  auto& d = *impl_;
  // ---- IMDSv2 ----
  if (req.path.rfind("/latest/", 0) == 0) d.imds_log.push_back(req.method + " " + req.path);
  if (req.path == "/latest/api/token") {
    if (req.method != "PUT" || req.header("x-aws-ec2-metadata-token-ttl-seconds").empty()) {
      return {400, {}, "Bad Request"};
    }
    d.imds_tokens.push_back(fmt::format("imds-token-{}", ++d.serial));
    return {200, {}, d.imds_tokens.back()};
  }
  if (req.path.rfind("/latest/meta-data/", 0) == 0) {
    const auto tok = req.header("x-aws-ec2-metadata-token");
    if (std::find(d.imds_tokens.begin(), d.imds_tokens.end(), tok) == d.imds_tokens.end()) {
      return {401, {}, ""};
    }
    const std::string rest = req.path.substr(18);
    if (rest == "iam/security-credentials/" && !d.imds_role.empty()) {
      return {200, {}, d.imds_role + "\n"};
    }
    if (rest == "iam/security-credentials/" + d.imds_role && !d.imds_role.empty()) {
      return {200, {}, d.imds_json};
    }
    if (rest == "placement/region" && !d.imds_region.empty()) return {200, {}, d.imds_region};
    return {404, {}, "Not Found"};
  }
  if (req.path == "/container-credentials") {
    if (d.container_auth.empty() || req.header("authorization") != d.container_auth) {
      return {403, {}, "{\"message\":\"forbidden\"}"};
    }
    return {200, {{"Content-Type", "application/json"}}, d.container_json};
  }

  // ---- AWS APIs ----
  if (req.method != "POST") return {405, {}, "Method Not Allowed"};
  const std::string target = req.header("x-amz-target");
  if (!target.empty()) {
    const std::string prefix = "AmazonSQS.";
    if (target.rfind(prefix, 0) != 0) {
      return Impl::error(Proto::kJson, 400, "UnknownOperationException", "unknown target");
    }
    const std::string op = target.substr(prefix.size());
    if (req.header("content-type") != "application/x-amz-json-1.0") {
      return Impl::error(Proto::kJson, 400, "InvalidParameterValue", "bad content type");
    }
    if (auto bad = d.verify(req, Proto::kJson, "sqs", kAsNs)) return *bad;
    ++d.calls[op];
    d.iam_actions.insert("sqs:" + op);
    if (auto f = d.take_fault(op, Proto::kJson, kAsNs)) return *f;
    return d.sqs(op, req.body, lock);
  }
  const auto form = parse_form(req.body);
  const std::string action = form_get(form, "Action");
  const std::string version = form_get(form, "Version");
  Proto proto = Proto::kQuery;
  std::string_view service, ns, want_version;
  if (action == "DescribeAutoScalingGroups" || action == "CompleteLifecycleAction" ||
      action == "RecordLifecycleActionHeartbeat") {
    service = "autoscaling", ns = kAsNs, want_version = "2011-01-01";
  } else if (action == "DescribeInstances") {
    proto = Proto::kEc2, service = "ec2", ns = kEc2Ns, want_version = "2016-11-15";
  } else if (action == "AssumeRole" || action == "AssumeRoleWithWebIdentity") {
    service = "sts", ns = kStsNs, want_version = "2011-06-15";
  } else {
    return Impl::error(Proto::kQuery, 400, "InvalidAction",
                       "The action " + action + " is not valid for this web service.");
  }
  if (version != want_version) {
    return Impl::error(proto, 400, "InvalidParameterValue", "Version must be " +
                                                              std::string(want_version), ns);
  }
  if (action == "AssumeRoleWithWebIdentity") {
    ++d.calls[action];
    if (form_get(form, "WebIdentityToken") != d.web_identity_token || d.web_identity_token.empty()) {
      return Impl::error(proto, 400, "InvalidIdentityToken", "Couldn't retrieve verification key",
                         ns);
    }
    return d.sts(action, form);
  }
  if (auto bad = d.verify(req, proto, service, ns)) return *bad;
  ++d.calls[action];
  d.iam_actions.insert(std::string(service) + ":" + action);
  if (auto f = d.take_fault(action, proto, ns)) return *f;
  if (action == "AssumeRole") return d.sts(action, form);
  if (action == "DescribeAutoScalingGroups") return d.describe_asgs(form);
  if (action == "DescribeInstances") return d.describe_instances(form);
  return d.lifecycle_call(action, form);
}

}  // namespace ep::test
