#include "reconcile/reconciler.h"
