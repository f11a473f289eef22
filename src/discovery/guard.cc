#include "discovery/guard.h"
