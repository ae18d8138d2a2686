// live_scores: fan-out. A score service publishes goals; every follower of a match hears
// them. Each follower is one object with an on() overload per event type, connected with
// tidings::subscriber<goal, match_ended>; a filter on the match number plays the part of a
// topic. Followers leave by letting their subscriber go out of scope, or by closing an app
// that a subscription tracks. The scoreboard subscribes last but runs first (priority), so
// followers always read the score that includes the goal they are told about.
// Exits with 0 only if every follower heard exactly what it should have.

#include <tidings/tidings.hpp>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace {

struct goal {
    int match;
    std::string team;
    int minute;
};

struct match_ended {
    int match;
};

/// The score of every match. It must see a goal before any follower does.
class scoreboard {
public:
    void on_goal(const goal& g) { ++goals_[g.match][g.team]; }

    [[nodiscard]] std::string score(int match) const {
        std::string text;
        const auto found = goals_.find(match);
        if (found == goals_.end()) return text;
        for (const auto& [team, count] : found->second) {
            if (!text.empty()) text += ", ";
            text += team + " " + std::to_string(count);
        }
        return text;
    }

private:
    std::map<int, std::map<std::string, int>> goals_;
};

/// A follower: one object, one on() overload per event type it hears.
struct follower {
    std::string name;
    const scoreboard* board;
    bool talkative;
    int goals_heard = 0;
    int ends_heard = 0;

    void on(const goal& g) {
        ++goals_heard;
        if (talkative) {
            std::printf("  %s: GOAL %s %d' (%s)\n", name.c_str(), g.team.c_str(), g.minute,
                        board->score(g.match).c_str());
        }
    }
    void on(const match_ended& e) {
        ++ends_heard;
        if (talkative) std::printf("  %s: match %d is over\n", name.c_str(), e.match);
    }
};

/// The events of one match only: the same check serves both event types.
auto of_match(int match) {
    return tidings::filter([match](const auto& event) { return event.match == match; });
}

/// A follower connected for as long as this object lives. Not movable: the subscriber keeps
/// the follower's address (so sessions are held by unique_ptr).
struct session {
    follower fan;
    tidings::subscriber<goal, match_ended> connection;

    session(tidings::bus& bus, follower f, int match)
        : fan(std::move(f)), connection(bus, fan, of_match(match)) {}
    session(const session&) = delete;
    session& operator=(const session&) = delete;
};

}  // namespace

int main() {
    tidings::bus bus;
    scoreboard board;

    follower ana{"ana", &board, true};
    follower chloe{"chloe", &board, true};
    tidings::subscriber<goal, match_ended> ana_connection{bus, ana, of_match(1)};
    tidings::subscriber<goal, match_ended> chloe_connection{bus, chloe, of_match(2)};

    // A crowd of 1000 silent followers, half on each match.
    std::vector<std::unique_ptr<session>> crowd;
    for (int i = 0; i < 1000; ++i) {
        crowd.push_back(
            std::make_unique<session>(bus, follower{"crowd", &board, false}, i % 2 == 0 ? 1 : 2));
    }

    // A phone app owned elsewhere (by shared_ptr): tidings::track ends its subscriptions when
    // the app is gone, and keeps the app alive while one of its handlers runs.
    auto app = std::make_shared<follower>(follower{"app", &board, true});
    tidings::subscriber<goal, match_ended> app_connection{bus, *app, tidings::track(app),
                                                          of_match(2)};

    // Subscribed last, yet it runs first: a member function with its object, at priority 100.
    auto board_connection = bus.subscribe(&scoreboard::on_goal, board, tidings::priority{100});

    tidings::publisher<goal> goals{bus};
    follower ben{"ben", &board, true};
    {
        tidings::subscriber<goal, match_ended> ben_connection{bus, ben, of_match(1)};
        std::printf("kick-off: match 1 Lions v Tigers, match 2 Owls v Foxes\n");
        goals.publish({1, "Lions", 12});
        goals.publish({2, "Owls", 30});
        std::printf("half-time: ben leaves, the app is closed\n");
    }  // ben_connection is destroyed: ben hears nothing more

    std::weak_ptr<follower> app_alive = app;
    app.reset();  // the app is gone: its handlers are never called again
    bool ok = app_alive.expired();

    goals.publish({1, "Tigers", 55});
    goals.publish({1, "Lions", 81});
    goals.publish({2, "Foxes", 88});
    bus.publish(match_ended{1});
    bus.publish(match_ended{2});
    std::printf("full time: match 1 %s; match 2 %s\n", board.score(1).c_str(),
                board.score(2).c_str());

    // Exact counts: match 1 had 3 goals, match 2 had 2.
    ok = ok && !app_connection.connected();
    ok = ok && ana.goals_heard == 3 && ana.ends_heard == 1;
    ok = ok && ben.goals_heard == 1 && ben.ends_heard == 0;
    ok = ok && chloe.goals_heard == 2 && chloe.ends_heard == 1;
    ok = ok && board.score(1) == "Lions 2, Tigers 1" && board.score(2) == "Foxes 1, Owls 1";
    long crowd_goals = 0;
    for (const auto& s : crowd) crowd_goals += s->fan.goals_heard;
    ok = ok && crowd_goals == 500L * 3 + 500L * 2;
    ok = ok && bus.subscriber_count<goal>() == 1 + 2 + 1000;  // board, ana, chloe, crowd
    std::printf("the crowd heard %ld goals: %s\n", crowd_goals, ok ? "as expected" : "UNEXPECTED");
    return ok ? 0 : 1;
}
